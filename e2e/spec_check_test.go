package e2e

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/ringkv/ringkv/openapi"
)

// TestSpecValidationCatchesWrongAnswers proves the validation the e2e tests rely on
// can fail: a fake node answers GET /kv/{key} correctly once, then with one thing
// wrong at a time, and each wrong answer must be reported.
func TestSpecValidationCatchesWrongAnswers(t *testing.T) {
	const goodBody = `{"key":"k","value":"v","version":1,"create_index":5,"mod_index":5,"group":3}`
	goodHeaders := map[string]string{
		"Content-Type": "application/json", "ETag": `"5"`, "X-Ringkv-Group": "3", "X-Ringkv-Index": "7", "X-Ringkv-Node": "node1",
		"X-Content-Type-Options": "nosniff",
	}
	cases := []struct {
		name    string
		status  int
		headers map[string]string // overrides of goodHeaders; "" deletes
		body    string
		wrong   bool
	}{
		{name: "correct answer", status: 200, body: goodBody},
		{name: "field of the wrong type", status: 200, wrong: true,
			body: `{"key":"k","value":"v","version":"1","create_index":5,"mod_index":5,"group":3}`},
		{name: "required field missing", status: 200, wrong: true,
			body: `{"key":"k","value":"v","version":1,"create_index":5,"mod_index":5}`},
		{name: "index header not a number", status: 200, headers: map[string]string{"X-Ringkv-Index": "seven"}, body: goodBody, wrong: true},
		{name: "group header missing", status: 200, headers: map[string]string{"X-Ringkv-Group": ""}, body: goodBody, wrong: true},
		{name: "nosniff missing", status: 200, headers: map[string]string{"X-Content-Type-Options": ""}, body: goodBody, wrong: true},
		{name: "undocumented status", status: http.StatusTeapot, body: goodBody, wrong: true},
		{name: "error as plain JSON", status: 404, headers: map[string]string{"ETag": ""},
			body: `{"title":"Not Found","status":404}`, wrong: true},
		{name: "problem without its status", status: 404,
			headers: map[string]string{"Content-Type": "application/problem+json", "ETag": ""}, body: `{"title":"Not Found"}`, wrong: true},
		{name: "correct problem", status: 404,
			headers: map[string]string{"Content-Type": "application/problem+json", "ETag": ""}, body: `{"title":"Not Found","status":404}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				for k, v := range goodHeaders {
					w.Header().Set(k, v)
				}
				for k, v := range tc.headers {
					if v == "" {
						w.Header().Del(k)
					} else {
						w.Header().Set(k, v)
					}
				}
				w.WriteHeader(tc.status)
				_, _ = w.Write([]byte(tc.body))
			}))
			defer srv.Close()
			var reported []error
			hc := &http.Client{Transport: validatingTransport{base: http.DefaultTransport, report: func(err error) { reported = append(reported, err) }}}
			c, err := openapi.NewClientWithResponses(srv.URL, openapi.WithHTTPClient(hc))
			if err != nil {
				t.Fatal(err)
			}
			// The generated client may also fail to decode a wrong body; what counts
			// here is that the validator reported it.
			_, clientErr := c.GetKeyWithResponse(context.Background(), "k", nil)
			if clientErr != nil && !tc.wrong {
				t.Fatal(clientErr)
			}
			switch {
			case tc.wrong && len(reported) == 0:
				t.Fatal("a wrong answer passed validation")
			case !tc.wrong && len(reported) > 0:
				t.Fatalf("a correct answer failed validation: %v", reported)
			case tc.wrong:
				t.Logf("caught: %.200s", reported[0])
			}
		})
	}
}
