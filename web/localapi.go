package web

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/go-chi/chi/v5"
)

// LocalAPI serves ClusterView and KV from a node's own HTTP API handler, called in
// process. Going through the API rather than around it means the dashboard takes the
// very path a client takes: writes and listings are forwarded to group leaders, the
// node list comes from the meta leader, and errors are the API's problem objects. It
// depends only on the REST contract (openapi/openapi.yaml), not on the API's code.
type LocalAPI struct {
	h http.Handler
}

// NewLocalAPI returns a LocalAPI over h, the node's API router.
func NewLocalAPI(h http.Handler) *LocalAPI { return &LocalAPI{h: h} }

var (
	_ ClusterView = (*LocalAPI)(nil)
	_ KV          = (*LocalAPI)(nil)
)

// memResponse is a ResponseWriter that keeps the answer in memory.
type memResponse struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (m *memResponse) Header() http.Header { return m.header }
func (m *memResponse) Write(b []byte) (int, error) {
	if m.status == 0 {
		m.status = http.StatusOK
	}
	return m.body.Write(b)
}
func (m *memResponse) WriteHeader(code int) {
	if m.status == 0 {
		m.status = code
	}
}

// call sends one request to the handler and decodes a JSON answer into out, or a
// problem into an *APIError.
func (a *LocalAPI) call(ctx context.Context, method, target string, body []byte, out any) error {
	// The dashboard request that led here was routed by chi, which keeps its routing
	// state in the context; the API's router (chi too) would take it up and route
	// this request as a sub-route of /ui. Clear it so routing starts afresh.
	ctx = context.WithValue(ctx, chi.RouteCtxKey, nil)
	req, err := http.NewRequestWithContext(ctx, method, target, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.RequestURI = target
	req.RemoteAddr = "127.0.0.1:0" // in process; some handlers log the peer
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/octet-stream")
	}
	resp := &memResponse{header: http.Header{}}
	a.h.ServeHTTP(resp, req)
	if resp.status == 0 {
		resp.status = http.StatusOK
	}
	if resp.status >= 300 {
		return problem(resp.status, resp.body.Bytes())
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(resp.body.Bytes(), out); err != nil {
		return fmt.Errorf("%s %s: decoding the answer: %w", method, target, err)
	}
	return nil
}

// problem turns an error answer into an *APIError, keeping the API's wording.
func problem(status int, body []byte) *APIError {
	var p struct {
		Title   string `json:"title"`
		Detail  string `json:"detail"`
		Outcome string `json:"outcome"`
	}
	_ = json.Unmarshal(body, &p)
	e := &APIError{Status: status, Title: p.Title, Detail: p.Detail, OutcomeUnknown: p.Outcome == "unknown"}
	if e.Title == "" {
		e.Title = http.StatusText(status)
	}
	if p.Title == "" && p.Detail == "" {
		// Not a problem object (a proxy's page, a plain-text error): show its start.
		d := bytes.TrimSpace(body)
		e.Detail = strings.ToValidUTF8(string(d[:min(len(d), 300)]), "")
	}
	return e
}

func (a *LocalAPI) Nodes(ctx context.Context) ([]Node, error) {
	var out struct {
		Nodes []Node `json:"nodes"`
	}
	err := a.call(ctx, http.MethodGet, "/admin/nodes", nil, &out)
	return out.Nodes, err
}

func (a *LocalAPI) Groups(ctx context.Context) ([]Group, error) {
	var out struct {
		Groups []Group `json:"groups"`
	}
	err := a.call(ctx, http.MethodGet, "/admin/groups", nil, &out)
	return out.Groups, err
}

func (a *LocalAPI) Partitions(ctx context.Context) (Partitions, error) {
	var out Partitions
	err := a.call(ctx, http.MethodGet, "/admin/partitions", nil, &out)
	return out, err
}

// keyJSON is a key as the API writes it: the key and the value each as a string when
// it is UTF-8, else in key_base64 / value_base64.
type keyJSON struct {
	Key         string  `json:"key"`
	KeyBase64   *string `json:"key_base64"`
	Value       *string `json:"value"`
	ValueBase64 *string `json:"value_base64"`
	Version     uint64  `json:"version"`
	CreateIndex uint64  `json:"create_index"`
	ModIndex    uint64  `json:"mod_index"`
	Group       uint32  `json:"group"`
}

func (k keyJSON) entry() (Entry, error) {
	e := Entry{Key: k.Key, Version: k.Version, CreateIndex: k.CreateIndex, ModIndex: k.ModIndex, Group: k.Group}
	if k.KeyBase64 != nil {
		b, err := base64.StdEncoding.DecodeString(*k.KeyBase64)
		if err != nil {
			return e, fmt.Errorf("key_base64 %q: %w", *k.KeyBase64, err)
		}
		e.Key = string(b)
	}
	switch {
	case k.Value != nil:
		e.Value = []byte(*k.Value)
	case k.ValueBase64 != nil:
		b, err := base64.StdEncoding.DecodeString(*k.ValueBase64)
		if err != nil {
			return e, fmt.Errorf("key %q: value_base64: %w", e.Key, err)
		}
		e.Value = b
	}
	return e, nil
}

// List asks for one page; cursor is the API's opaque `next` of the page before ("" for
// the first), passed back as the API's cursor parameter.
func (a *LocalAPI) List(ctx context.Context, prefix, cursor string, limit int) (KeyPage, error) {
	q := url.Values{}
	q.Set("prefix", prefix)
	if cursor != "" {
		q.Set("cursor", cursor)
	}
	q.Set("limit", strconv.Itoa(limit))
	var out struct {
		Items []keyJSON `json:"items"`
		Next  string    `json:"next"`
	}
	if err := a.call(ctx, http.MethodGet, "/kv?"+q.Encode(), nil, &out); err != nil {
		return KeyPage{}, err
	}
	page := KeyPage{Next: out.Next, Items: make([]Entry, 0, len(out.Items))}
	for _, it := range out.Items {
		e, err := it.entry()
		if err != nil {
			return KeyPage{}, err
		}
		page.Items = append(page.Items, e)
	}
	return page, nil
}

// keyPath is the API path of key. Escaping "/" too keeps the key one path segment;
// the API unescapes the raw path, so every byte arrives as it was.
func keyPath(key string) string { return "/kv/" + url.PathEscape(key) }

func (a *LocalAPI) Get(ctx context.Context, key string) (Entry, error) {
	var out keyJSON
	if err := a.call(ctx, http.MethodGet, keyPath(key), nil, &out); err != nil {
		return Entry{}, err
	}
	return out.entry()
}

func (a *LocalAPI) Put(ctx context.Context, key string, value []byte) (PutResult, error) {
	var out struct {
		Created bool   `json:"created"`
		Version uint64 `json:"version"`
	}
	if value == nil {
		value = []byte{}
	}
	err := a.call(ctx, http.MethodPut, keyPath(key), value, &out)
	return PutResult{Created: out.Created, Version: out.Version}, err
}

func (a *LocalAPI) Delete(ctx context.Context, key string) error {
	return a.call(ctx, http.MethodDelete, keyPath(key), nil, nil)
}
