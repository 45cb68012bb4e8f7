package openapi

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestBearerTokenOptions(t *testing.T) {
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = append(got, r.Header.Get("Authorization"))
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"status":"ok"}`))
	}))
	defer srv.Close()
	for _, token := range []string{"rkv_x", ""} {
		c, err := NewClientWithResponses(srv.URL, WithBearerToken(token))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.HealthzWithResponse(context.Background()); err != nil {
			t.Fatal(err)
		}
		req, _ := http.NewRequest(http.MethodGet, srv.URL, nil)
		resp, err := (&http.Client{Transport: BearerTransport(nil, token)}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if req.Header.Get("Authorization") != "" {
			t.Fatal("BearerTransport changed the caller's request")
		}
	}
	want := []string{"Bearer rkv_x", "Bearer rkv_x", "", ""}
	if len(got) != 4 || got[0] != want[0] || got[1] != want[1] || got[2] != "" || got[3] != "" {
		t.Fatalf("Authorization headers sent: %q, want %q", got, want)
	}
}
