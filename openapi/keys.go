package openapi

// A key is written in JSON as a value is: `key` when it is valid UTF-8, else
// `key_base64` with `key` absent. RawKey gives the key's bytes (as a Go string, which
// holds any bytes) from whichever is present; pass it to GetKey, DeleteKey or PutKey
// as it is, they path-escape every byte.

// RawKey is the key's bytes.
func (kv KeyValue) RawKey() string { return rawKey(kv.Key, kv.KeyBase64) }

// RawKey is the key's bytes.
func (r PutResult) RawKey() string { return rawKey(r.Key, r.KeyBase64) }

// RawKey is the key's bytes.
func (r DeleteResult) RawKey() string { return rawKey(r.Key, r.KeyBase64) }

func rawKey(text string, b64 *[]byte) string {
	if b64 != nil {
		return string(*b64) // encoding/json decoded the base64 already (format: byte)
	}
	return text
}
