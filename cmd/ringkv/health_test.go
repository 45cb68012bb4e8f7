package main

import "testing"

func TestHealthFindsTheLocalNodeFromItsListenAddress(t *testing.T) {
	for _, tc := range []struct{ httpAddr, want string }{
		{"", "http://127.0.0.1:8080"},
		{"0.0.0.0:9090", "http://127.0.0.1:9090"},
		{"[::]:8181", "http://127.0.0.1:8181"},
		{"garbage", "http://127.0.0.1:8080"},
	} {
		if got := localNodeAddr(tc.httpAddr); got != tc.want {
			t.Errorf("localNodeAddr(%q) = %q, want %q", tc.httpAddr, got, tc.want)
		}
	}
}
