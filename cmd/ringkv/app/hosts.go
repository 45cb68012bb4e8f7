package app

import "os"

// allowedHosts are the names this node answers for besides IP literals and localhost
// (httpapi.Config.AllowedHosts): the host parts of --http-addr and --advertise-http
// (as advertised: what peers and clients are told to use), the machine's hostname,
// and --allowed-hosts. A Host header naming anything else is taken for DNS rebinding.
func (n *Node) allowedHosts() []string {
	hosts := []string{n.cfg.HTTPAddr, n.httpAddr}
	if h, err := os.Hostname(); err == nil && h != "" {
		hosts = append(hosts, h)
	}
	return append(hosts, n.cfg.AllowedHosts...)
}
