package etcdclient

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/ezrestore/ezrestore/cluster"
	"github.com/ezrestore/ezrestore/inventory"
	"github.com/ezrestore/ezrestore/transport"
)

// Open opens the cluster sel names, connects to its etcd hosts over SSH
// (forks at a time) and returns a client of the first member, in the
// inventory's order, that answers. Close ends the client and the SSH
// connections. For a command that needs nothing else of the hosts (diff).
func Open(ctx context.Context, sel cluster.Selector, forks int) (*Client, *cluster.Cluster, error) {
	cl, err := cluster.OpenEtcd(sel)
	if err != nil {
		return nil, nil, err
	}
	pool := cl.Connect(ctx, cl.Inventory.EtcdHosts(), forks)
	cli, err := DialAny(ctx, Conns(pool, cl.Inventory.EtcdHosts()))
	if err != nil {
		pool.Close()
		return nil, nil, fmt.Errorf("cluster %s: %w%s", cl.Name, err, unreachable(pool.Failed()))
	}
	cli.closers = append(cli.closers, pool.Close)
	return cli, cl, nil
}

// Conns are the pool's connections to hosts, in hosts' order, leaving out
// those it could not reach.
func Conns(pool *transport.Pool, hosts []*inventory.Host) []transport.Conn {
	var conns []transport.Conn
	for _, h := range hosts {
		if c, ok := pool.Get(h.Name); ok {
			conns = append(conns, c)
		}
	}
	return conns
}

// unreachable lists the hosts SSH could not reach, one line each.
func unreachable(failed map[string]error) string {
	if len(failed) == 0 {
		return ""
	}
	names := make([]string, 0, len(failed))
	for n := range failed {
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	for _, n := range names {
		fmt.Fprintf(&b, "\n  host %s: not reachable over SSH: %v", n, failed[n])
	}
	return b.String()
}
