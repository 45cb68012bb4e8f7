package httpapi

import (
	"errors"
	"testing"
)

func TestCursorRoundTripsAndRefusesAnythingElse(t *testing.T) {
	c := Cursor{0: {Index: 7, Seq: 2}, 3: AtIndex(1 << 40), 4096: {Index: 0, Seq: 0}}
	s := c.Encode()
	got, err := ParseCursor(s)
	if err != nil || len(got) != 3 || got[0] != c[0] || got[3] != c[3] || got[4096] != c[4096] {
		t.Fatalf("round trip of %v: %v (%v)", c, got, err)
	}
	for _, bad := range []string{
		"", "w1.", "w2." + s[3:], s[3:], s + "=", s + "A", "w1.!!",
		encodeCursor([]byte("a key")), // a listing's next is not a watch cursor
		"w1.AwEAAQEA",                 // groups 3 then 1: out of order
	} {
		if _, err := ParseCursor(bad); !errors.Is(err, ErrBadRequest) {
			t.Errorf("ParseCursor(%q) = %v, want ErrBadRequest", bad, err)
		}
	}
	// And the other way: a watch cursor is not a listing's next.
	if _, err := decodeCursor(s); !errors.Is(err, ErrBadRequest) {
		t.Errorf("a watch cursor was taken as a listing's next: %v", err)
	}
}

func TestPosStringRoundTrips(t *testing.T) {
	for _, p := range []Pos{{5, 0}, {5, 3}, AtIndex(9)} {
		if got, err := ParsePos(p.String()); err != nil || got != p {
			t.Errorf("ParsePos(%q) = %v %v, want %v", p.String(), got, err, p)
		}
	}
	for _, bad := range []string{"", "x", "1.", "1.4294967295", "-1"} {
		if _, err := ParsePos(bad); err == nil {
			t.Errorf("ParsePos(%q) accepted", bad)
		}
	}
}
