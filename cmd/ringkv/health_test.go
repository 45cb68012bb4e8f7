package main

import "testing"

func TestHealthFindsTheLocalNodeFromItsListenAddress(t *testing.T) {
	for _, tc := range []struct{ httpAddr, want string }{
		{"", "http://127.0.0.1:8080"},
		{"0.0.0.0:9090", "http://127.0.0.1:9090"},
		{"[::]:8181", "http://127.0.0.1:8181"},
		{"garbage", "http://127.0.0.1:8080"},
		{":7070", "http://127.0.0.1:7070"},
		{"10.1.2.3:8080", "http://10.1.2.3:8080"}, // bound to one address: loopback would not reach it
		{"[fd00::7]:8080", "http://[fd00::7]:8080"},
		{"node1.internal:8080", "http://node1.internal:8080"},
	} {
		if got := localNodeAddr(tc.httpAddr); got != tc.want {
			t.Errorf("localNodeAddr(%q) = %q, want %q", tc.httpAddr, got, tc.want)
		}
	}
}
