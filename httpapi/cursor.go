package httpapi

import (
	"encoding/base64"
	"fmt"
	"net/url"
	"unicode/utf8"
)

// A listing page ends with `next`, an opaque cursor: the unpadded base64url encoding
// of the raw bytes of the page's last key. It is exact for any key (a key that is not
// valid UTF-8 would be mangled to U+FFFD in a JSON string, and a page started after
// the mangled key repeats itself forever), and safe in a query string as it is.
// Clients pass it back unchanged as `cursor`; `start_after` keeps taking a plain key,
// as it always has, so the two are told apart by their parameter name, not by content.

// encodeCursor is the cursor of a page whose last key is key.
func encodeCursor(key []byte) string { return base64.RawURLEncoding.EncodeToString(key) }

// decodeCursor is the key a cursor names; an error wraps ErrBadRequest.
func decodeCursor(c string) ([]byte, error) {
	k, err := base64.RawURLEncoding.Strict().DecodeString(c)
	if err != nil || len(k) == 0 || len(k) > MaxKeyBytes { // it names a key: no longer than one
		return nil, fmt.Errorf("%w: cursor must be the `next` of a previous page, unchanged", ErrBadRequest)
	}
	return k, nil
}

// listStart reads where a listing starts: after the key named by `cursor` or by
// `start_after`, or at the beginning (nil) when neither is given.
func listStart(q url.Values) ([]byte, error) {
	switch {
	case q.Has("cursor") && q.Has("start_after"):
		return nil, fmt.Errorf("%w: send cursor or start_after, not both", ErrBadRequest)
	case q.Has("cursor"):
		if q.Get("cursor") == "" {
			return nil, nil // the empty `next` of a last page: start over, as start_after= does
		}
		return decodeCursor(q.Get("cursor"))
	case q.Has("start_after"):
		return []byte(q.Get("start_after")), nil
	}
	return nil, nil
}

// keyFields splits a key into its JSON forms, as values are split: the string when
// the key is valid UTF-8, else its standard base64 (and the string left empty, so
// `key` is absent: keys are never empty).
func keyFields(k []byte) (text string, b64 *string) {
	if utf8.Valid(k) {
		return string(k), nil
	}
	s := base64.StdEncoding.EncodeToString(k)
	return "", &s
}
