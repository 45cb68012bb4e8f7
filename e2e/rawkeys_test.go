package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ringkv/ringkv/openapi"
)

// TestKeysThatAreNotUTF8 is issue #12's report, through the binary: after PUT
// /kv/a%FE and /kv/a%FF (and UTF-8 keys in other groups), paging GET /kv with
// limit=1 by next ends, lists every key exactly once in raw byte order (each answer
// checked against openapi.yaml by the validating client), and each listed key is
// read and deleted by the bytes its key_base64 gave. `ringkv ls -o json` lists them
// the same way.
func TestKeysThatAreNotUTF8(t *testing.T) {
	c := startProcCluster(t, 3)
	ctx := context.Background()
	cl := api(t, c.procs[0].httpURL)
	keys := []string{"a\xfe", "a\xff", "a", "b/c", "é", "zz", "k1", "k2", "\xff"}
	groups := map[int64]bool{}
	for _, k := range keys {
		eventually(t, 20*time.Second, "PUT "+k, func() error {
			r, err := cl.PutKeyWithBodyWithResponse(ctx, k, nil, "application/octet-stream", strings.NewReader("v-"+k))
			if err != nil {
				return err
			}
			if r.JSON201 == nil {
				return fmt.Errorf("PUT %q: %s %s", k, r.Status(), r.Body)
			}
			if r.JSON201.RawKey() != k {
				t.Fatalf("PUT %q answered key %q", k, r.JSON201.RawKey())
			}
			return nil
		})
		r, err := cl.GetKeyWithResponse(ctx, k, nil)
		if err != nil || r.JSON200 == nil {
			t.Fatalf("GET %q: %v %v", k, r, err)
		}
		groups[r.JSON200.Group] = true
	}
	if len(groups) < 3 {
		t.Fatalf("the keys landed in %d groups; the test needs keys in several", len(groups))
	}
	want := slices.Sorted(slices.Values(keys)) // Go orders strings by their bytes

	var listed []openapi.KeyValue
	limit, keysOnly, cursor := 1, true, ""
	for pages := 0; ; pages++ {
		if pages > len(keys) {
			t.Fatalf("paging does not end after %d pages", pages)
		}
		params := &openapi.ListKeysParams{Limit: &limit, KeysOnly: &keysOnly}
		if cursor != "" {
			params.Cursor = &cursor
		}
		var page *openapi.KeyList
		eventually(t, 20*time.Second, "a page of the listing", func() error {
			r, err := api(t, c.procs[pages%3].httpURL).ListKeysWithResponse(ctx, params)
			if err != nil {
				return err
			}
			if r.JSON200 == nil {
				return fmt.Errorf("list: %s %s", r.Status(), r.Body) // a 503 while leaders move
			}
			page = r.JSON200
			return nil
		})
		listed = append(listed, page.Items...)
		if cursor = page.Next; cursor == "" {
			break
		}
	}
	var got []string
	for _, kv := range listed {
		if (kv.Key == "") == (kv.KeyBase64 == nil) {
			t.Fatalf("item %+v: want exactly one of key and key_base64", kv)
		}
		got = append(got, kv.RawKey())
	}
	if fmt.Sprintf("%q", got) != fmt.Sprintf("%q", want) {
		t.Fatalf("listed %q\nwant   %q", got, want)
	}

	out, err := exec.Command(c.bin, "ls", "--addr", c.procs[1].httpURL, "-o", "json", "--page-size", "2").CombinedOutput()
	var ls openapi.KeyList
	if err != nil || json.Unmarshal(out, &ls) != nil {
		t.Fatalf("ringkv ls -o json: %v\n%s", err, out)
	}
	var lsKeys []string
	for _, kv := range ls.Items {
		lsKeys = append(lsKeys, kv.RawKey())
	}
	if fmt.Sprintf("%q", lsKeys) != fmt.Sprintf("%q", want) {
		t.Fatalf("ringkv ls listed %q\nwant %q", lsKeys, want)
	}

	for i, kv := range listed {
		k := kv.RawKey()
		r, err := api(t, c.procs[i%3].httpURL).GetKeyWithResponse(ctx, k, nil)
		if err != nil || r.JSON200 == nil || r.JSON200.RawKey() != k || valueOf(r.JSON200) != "v-"+k {
			t.Fatalf("GET listed key %q: %v %v", k, r, err)
		}
		d, err := api(t, c.procs[(i+1)%3].httpURL).DeleteKeyWithResponse(ctx, k, nil)
		if err != nil || d.JSON200 == nil || d.JSON200.RawKey() != k {
			t.Fatalf("DELETE listed key %q: %v %v", k, d, err)
		}
		if r, err := cl.GetKeyWithResponse(ctx, k, nil); err != nil || r.StatusCode() != http.StatusNotFound {
			t.Fatalf("GET %q after its delete: %v %v", k, r, err)
		}
	}
}

// valueOf is a read value's bytes, from value or value_base64.
func valueOf(kv *openapi.KeyValue) string {
	if kv.ValueBase64 != nil {
		return string(*kv.ValueBase64)
	}
	if kv.Value != nil {
		return *kv.Value
	}
	return ""
}
