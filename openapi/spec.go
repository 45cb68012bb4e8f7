package openapi

import _ "embed"

// Spec is openapi.yaml as compiled into the binary; nodes serve it at /openapi.yaml.
//
//go:embed openapi.yaml
var Spec []byte
