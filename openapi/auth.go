package openapi

import (
	"context"
	"net/http"
)

// WithBearerToken makes every request of a generated client carry
// Authorization: Bearer token (a ringkv token: `ringkv token create`, or the bootstrap
// admin token in the data dir's admin.token). An empty token adds nothing, for a node
// with auth off.
func WithBearerToken(token string) ClientOption {
	return WithRequestEditorFn(func(_ context.Context, req *http.Request) error {
		setBearer(req, token)
		return nil
	})
}

// BearerTransport wraps base (nil: http.DefaultTransport) so that every request sent
// through it carries Authorization: Bearer token, for clients built on a plain
// http.Client (openapi/direct, a load generator). An empty token adds nothing.
func BearerTransport(base http.RoundTripper, token string) http.RoundTripper {
	if base == nil {
		base = http.DefaultTransport
	}
	if token == "" {
		return base
	}
	return bearerTransport{base: base, token: token}
}

type bearerTransport struct {
	base  http.RoundTripper
	token string
}

func (t bearerTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	req = req.Clone(req.Context()) // a RoundTripper must not change the request it is given
	setBearer(req, t.token)
	return t.base.RoundTrip(req)
}

func setBearer(req *http.Request, token string) {
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
}
