package openapi

import (
	"context"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
)

func TestSpecLoadsAndValidates(t *testing.T) {
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(Spec)
	if err != nil {
		t.Fatal(err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("openapi.yaml is not a valid OpenAPI document: %v", err)
	}
	ops := map[string]bool{}
	for _, item := range doc.Paths.Map() {
		for _, op := range item.Operations() {
			ops[op.OperationID] = true
		}
	}
	for _, id := range []string{"putKey", "getKey", "deleteKey", "listKeys", "listNodes", "joinNode", "listGroups",
		"getGroup", "transferLeader", "getGroupDigest", "decommissionNode", "listPartitions", "healthz", "readyz", "getSpec", "metrics",
		"createToken", "listTokens", "revokeToken"} {
		if !ops[id] {
			t.Errorf("operation %s is missing", id)
		}
	}
}
