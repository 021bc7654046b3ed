package transport

import (
	"context"
	"fmt"
	"net"
	"time"
)

// Dialer is a Conn that can open a TCP connection from its host: an SSH
// direct-tcpip channel, so a service that listens only where the host can
// reach it (etcd's client port) is reached over the one connection the
// host already has, with no port opened on the bastion.
type Dialer interface {
	// DialContext connects from the host to addr ("host:port"); network
	// must be "tcp" (or "tcp4", "tcp6").
	DialContext(ctx context.Context, network, addr string) (net.Conn, error)
}

// DialContext opens a channel from c's host to addr, given up at ctx's end
// or after the connection's connect timeout.
func (c *sshConn) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	switch network {
	case "tcp", "tcp4", "tcp6":
	default:
		return nil, fmt.Errorf("host %s: forward to %s: network %q is not TCP", c.host.Name, addr, network)
	}
	deadline := time.Now().Add(c.opts.ConnectTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	conn, err := dialThrough(ctx, c.client, addr, deadline, "open a channel from the host")
	if err != nil {
		return nil, fmt.Errorf("host %s: forward to %s: %w", c.host.Name, addr, err)
	}
	return conn, nil
}
