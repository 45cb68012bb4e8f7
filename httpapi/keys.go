package httpapi

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"unicode/utf8"
)

// MaxKeyBytes is the longest key accepted.
const MaxKeyBytes = 4096

// keyFromPath returns the key named by the request path /kv/<path-escaped key>. It
// unescapes the raw path itself, so "%2F" and binary bytes such as "%00" are part of
// the key exactly as sent.
func keyFromPath(r *http.Request) ([]byte, error) {
	raw := strings.TrimPrefix(r.URL.EscapedPath(), "/kv/")
	if raw == "" {
		return nil, fmt.Errorf("%w: the key is empty", ErrBadRequest)
	}
	k, err := url.PathUnescape(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: the key is not a valid path-escaped string: %v", ErrBadRequest, err)
	}
	return checkKey([]byte(k))
}

func checkKey(k []byte) ([]byte, error) {
	if len(k) == 0 {
		return nil, fmt.Errorf("%w: the key is empty", ErrBadRequest)
	}
	if len(k) > MaxKeyBytes {
		return nil, fmt.Errorf("%w: the key is %d bytes; at most %d are allowed", ErrBadRequest, len(k), MaxKeyBytes)
	}
	return k, nil
}

// condition reads If-Match / If-None-Match.
func condition(r *http.Request) (Condition, error) {
	var c Condition
	im, inm := r.Header.Get("If-Match"), r.Header.Get("If-None-Match")
	if im != "" && inm != "" {
		return c, fmt.Errorf("%w: send If-Match or If-None-Match, not both", ErrBadRequest)
	}
	switch strings.TrimSpace(inm) {
	case "":
	case "*":
		c.Absent = true
	default:
		return c, fmt.Errorf("%w: If-None-Match supports only *", ErrBadRequest)
	}
	switch im = strings.TrimSpace(im); {
	case im == "":
	case im == "*":
		c.Exists = true
	case strings.Contains(im, ","):
		return c, fmt.Errorf("%w: If-Match takes a single ETag", ErrBadRequest)
	default:
		c.ETag = strings.TrimPrefix(im, "W/")
	}
	return c, nil
}

// textOrBase64 splits a byte string into the JSON string form when it is valid UTF-8,
// else the base64 form.
func textOrBase64(b []byte) (text *string, b64 *string) {
	if utf8.Valid(b) {
		s := string(b)
		return &s, nil
	}
	s := base64.StdEncoding.EncodeToString(b)
	return nil, &s
}

func boolParam(q url.Values, name string) (bool, error) {
	switch v := q.Get(name); v {
	case "", "false", "0":
		return false, nil
	case "true", "1":
		return true, nil
	default:
		return false, fmt.Errorf("%w: %s must be true or false, not %q", ErrBadRequest, name, v)
	}
}

func staleParam(q url.Values) (bool, error) {
	switch v := q.Get("consistency"); v {
	case "", "linearizable":
		return false, nil
	case "stale":
		return true, nil
	default:
		return false, fmt.Errorf("%w: consistency must be linearizable or stale, not %q", ErrBadRequest, v)
	}
}
