package etcdclient_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ezrestore/ezrestore/cluster"
	"github.com/ezrestore/ezrestore/etcdclient"
	"github.com/ezrestore/ezrestore/internal/testkit/labtest"
	"github.com/ezrestore/ezrestore/lab"
)

// TestClientThroughSSH reaches the lab's TLS etcd through the hosts' SSH
// connections with the certificate the etcd unit names: a member that is
// down is passed over for the next, the key written is read back by the
// host's own etcdctl, and with the quorum lost (two of three down) the error
// names each host and why.
func TestClientThroughSSH(t *testing.T) {
	l := labtest.Up(t, lab.Options{Name: "recover-ec", Etcd: 3, Nodes: -1})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	sel := cluster.Selector{Base: l.Opts.Base, Cluster: l.Opts.Name}
	hosts := l.EtcdHosts()
	exec := func(addr, cmd string) string {
		t.Helper()
		out, err := l.Exec(ctx, addr, cmd)
		if err != nil {
			t.Fatalf("%s: %s: %v: %s", addr, cmd, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	exec(hosts[0].Address, "systemctl stop etcd")

	cli, _, err := etcdclient.Open(ctx, sel, 5)
	if err != nil {
		t.Fatalf("open with one member down: %v", err)
	}
	if cli.Host != hosts[1].Address || cli.Endpoint != "https://"+hosts[1].Address+":2379" || cli.Revision == 0 {
		t.Fatalf("client: host %s endpoint %s revision %d; want the second member", cli.Host, cli.Endpoint, cli.Revision)
	}
	if _, err := cli.Put(ctx, "/ezrestore-test/a", "through ssh"); err != nil {
		t.Fatalf("put: %v", err)
	}
	if err := cli.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	got := exec(hosts[2].Address, l.EtcdctlCmd(hosts[2].Address)+" get --print-value-only /ezrestore-test/a")
	if got != "through ssh" {
		t.Fatalf("etcdctl on %s reads %q", hosts[2].Address, got)
	}

	// The third member still runs and answers a status request, but
	// without a quorum it is no member to read from or write to.
	exec(hosts[1].Address, "systemctl stop etcd")
	t0 := time.Now()
	_, _, err = etcdclient.Open(ctx, sel, 5)
	t.Logf("open without a quorum failed after %v", time.Since(t0))
	if err == nil {
		t.Fatal("open with two of three members down: no error")
	}
	for _, h := range hosts[:2] {
		if !strings.Contains(err.Error(), "etcd client on host "+h.Address+": status of https://"+h.Address+":2379") {
			t.Errorf("error does not name %s and its status request:\n%v", h.Address, err)
		}
	}
	// The survivor says at once that it knows no leader, rather than
	// waiting out the read.
	if h := hosts[2]; !strings.Contains(err.Error(), "etcd client on host "+h.Address+": status of https://"+h.Address+":2379: the member knows no leader") {
		t.Errorf("error does not say %s knows no leader:\n%v", h.Address, err)
	}
}
