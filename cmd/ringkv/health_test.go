package main

import "testing"

func TestHealthFindsTheLocalNodeFromItsListenAddress(t *testing.T) {
	for _, tc := range []struct{ httpAddr, want string }{
		{"", "127.0.0.1:8080"},
		{"0.0.0.0:9090", "127.0.0.1:9090"},
		{"[::]:8181", "127.0.0.1:8181"},
		{"garbage", "127.0.0.1:8080"},
		{":7070", "127.0.0.1:7070"},
		{"10.1.2.3:8080", "10.1.2.3:8080"}, // bound to one address: loopback would not reach it
		{"[fd00::7]:8080", "[fd00::7]:8080"},
		{"node1.internal:8080", "node1.internal:8080"},
	} {
		if got := localNodeAddr(tc.httpAddr); got != tc.want {
			t.Errorf("localNodeAddr(%q) = %q, want %q", tc.httpAddr, got, tc.want)
		}
	}
}
