package web

import (
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Formatting helpers the components call.

func arcLabel(a Arc) string {
	leader := "no leader"
	if a.Leader != "" {
		leader = "leader " + a.Leader
	}
	return fmt.Sprintf("Partition %d · group %d · %s", a.Partition.ID, a.Partition.Group, leader)
}

func roleOf(r Replica) string {
	switch {
	case r.State == "Leader":
		return "leader"
	case r.State == "unreachable":
		return "unreachable"
	case !r.Voter:
		return "non-voter"
	case r.State == "Candidate":
		return "candidate"
	case r.State == "Shutdown":
		return "shut down"
	}
	return "follower"
}

func pathEscape(s string) string  { return url.PathEscape(s) }
func queryEscape(s string) string { return url.QueryEscape(s) }

func asAPIError(err error) (*APIError, bool) {
	var ae *APIError
	ok := errors.As(err, &ae)
	return ae, ok
}

// printable shows a key as text, with every byte that is not valid UTF-8 and every
// ASCII control character written as \xNN, so a binary key is readable and never
// breaks the page's encoding.
func printable(s string) string {
	clean := utf8.ValidString(s) && !strings.ContainsFunc(s, func(r rune) bool { return r < 0x80 && unicode.IsControl(r) })
	if clean {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if (r == utf8.RuneError && size == 1) || (r < 0x80 && unicode.IsControl(r)) {
			fmt.Fprintf(&b, `\x%02x`, s[i])
		} else {
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}

// isText: valid UTF-8 without control characters other than tab and line breaks.
func isText(b []byte) bool {
	if !utf8.Valid(b) {
		return false
	}
	for _, r := range string(b) {
		if unicode.IsControl(r) && r != '\n' && r != '\r' && r != '\t' {
			return false
		}
	}
	return true
}

// previewRunes is how much of a value the key list shows.
const previewRunes = 80

func preview(b []byte) string {
	if !isText(b) {
		return fmt.Sprintf("(binary, %d bytes)", len(b))
	}
	s := strings.Join(strings.Fields(string(b)), " ")
	if utf8.RuneCountInString(s) > previewRunes {
		return string([]rune(s)[:previewRunes]) + "…"
	}
	return s
}

// maxShown bounds a value page: a 1 MiB value as a hex dump would be a 4 MiB page.
const maxShown = 64 << 10

func clip(b []byte) ([]byte, bool) {
	if len(b) <= maxShown {
		return b, false
	}
	n := maxShown
	for n > maxShown-utf8.UTFMax && !utf8.RuneStart(b[n]) {
		n-- // end on a character boundary, so text stays valid UTF-8
	}
	return b[:n], true
}

func hexDump(b []byte) string { return hex.Dump(b) }
