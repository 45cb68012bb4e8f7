// Package openapi holds ringkv's API description (openapi.yaml, the source of truth of
// the REST contract) and the Go client and types generated from it with oapi-codegen.
// Regenerate with `make generate`; `make verify-generated` fails when the committed
// code is stale.
package openapi

//go:generate go tool oapi-codegen -config oapi-codegen.yaml openapi.yaml
