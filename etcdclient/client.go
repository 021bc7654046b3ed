// Package etcdclient is a client of a cluster's etcd (go.etcd.io/etcd
// client v3) for what etcdctl on a host cannot do well: reading many keys
// into the bastion (diff) and create-only transactions (recover).
//
// It reaches a member's client port through the SSH connection of that
// member's host (a forwarded TCP channel, transport.Dialer): nothing is
// opened on the bastion, and a member that listens only on its host's
// address or on localhost is reached as its host reaches it. It presents
// the client certificate the member's own etcd unit names (--cert-file,
// --key-file, --trusted-ca-file), the files etcdctl uses in status and
// backup, read over the same connection as root and kept in memory only.
// Those files are on every etcd host in kubeasz's and kubespray's layouts
// alike (the unit must name them); the bastion's copy (kubeasz's
// clusters/NAME/ssl/) exists in kubeasz's layout only and may be older
// than what the member runs with.
//
// It imports cluster, etcdhost, inventory and transport only: never the
// engine or a command.
package etcdclient

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"

	"github.com/ezrestore/ezrestore/etcdhost"
	"github.com/ezrestore/ezrestore/transport"
)

// DialTimeout bounds connecting to one member and its first answer.
const DialTimeout = 10 * time.Second

// StatusTimeout bounds the status request that comes first: a running
// member answers it in milliseconds even without a quorum.
const StatusTimeout = 4 * time.Second

// Client is a connection to one member of the cluster's etcd, through its
// host's SSH connection.
type Client struct {
	*clientv3.Client
	// Host is the inventory name of the member's host; Endpoint its client
	// URL as its unit advertises it.
	Host, Endpoint string
	// Revision is the cluster's revision when the member first answered.
	Revision int64
	closers  []func() error
}

// Close ends the etcd client, then whatever Open opened for it.
func (c *Client) Close() error {
	errs := []error{c.Client.Close()}
	for i := len(c.closers) - 1; i >= 0; i-- {
		errs = append(errs, c.closers[i]())
	}
	return errors.Join(errs...)
}

// Dial connects to the member on conn's host: it reads the host's etcd
// unit for the client URL and TLS files, reads the files, and opens a
// client whose every connection is a channel of conn to that URL. It
// returns once the member answered a linearizable read (it has a quorum).
func Dial(ctx context.Context, conn transport.Conn) (*Client, error) {
	host := conn.Host().Name
	fail := func(step string, err error) (*Client, error) {
		return nil, fmt.Errorf("etcd client on host %s: %s: %w", host, step, err)
	}
	d, ok := conn.(transport.Dialer)
	if !ok {
		return fail("connect", errors.New("this connection cannot forward a TCP connection"))
	}
	cfg, err := etcdhost.ReadEtcdConfig(ctx, conn)
	if err != nil {
		return fail("read etcd.service", err)
	}
	endpoint := etcdhost.FirstURL(cfg.ClientURLs)
	u, err := url.Parse(endpoint)
	if err != nil || u.Host == "" {
		return fail("read etcd.service", fmt.Errorf("advertised client URL %q (%s) is not a URL", endpoint, cfg.From["advertise-client-urls"]))
	}
	addr := u.Host
	if u.Port() == "" {
		addr = net.JoinHostPort(u.Hostname(), "2379")
	}
	var tlsCfg *tls.Config
	if u.Scheme == "https" {
		if tlsCfg, err = readTLS(ctx, conn, cfg, u.Hostname()); err != nil {
			return fail("read the client certificate", err)
		}
	}
	dctx, cancel := context.WithTimeout(ctx, DialTimeout)
	defer cancel()
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   []string{endpoint},
		DialTimeout: DialTimeout,
		TLS:         tlsCfg,
		Logger:      zap.NewNop(),
		Context:     context.WithoutCancel(ctx),
		// Every connection of the client, whatever address gRPC asks for,
		// is a channel from the member's host to its client URL.
		DialOptions: []grpc.DialOption{grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) {
			return d.DialContext(ctx, "tcp", addr)
		})},
		// A member that is down fails fast: the caller tries the next.
		MaxUnaryRetries: 2,
	})
	if err != nil {
		return fail("connect to "+endpoint, err)
	}
	// A member that lost its quorum still answers a status request, at
	// once, and says it knows no leader: no need to wait out the read below
	// (a majority loss, where a restore is most urgent, would pay the whole
	// DialTimeout in every plan).
	// A member whose etcd is down answers nothing: StatusTimeout, not the
	// whole DialTimeout, tells.
	sctx, scancel := context.WithTimeout(dctx, StatusTimeout)
	st, err := cli.Status(sctx, endpoint)
	scancel()
	switch {
	case err != nil:
		cli.Close()
		return fail("status of "+endpoint, err)
	case st.Leader == 0:
		cli.Close()
		return fail("status of "+endpoint, errors.New("the member knows no leader: no quorum"))
	}
	// A linearizable read, as etcdctl endpoint health does: a member that
	// lost its quorum may still name a leader it heard from last.
	resp, err := cli.Get(dctx, "health")
	if err != nil {
		cli.Close()
		return fail("linearizable read from "+endpoint, err)
	}
	return &Client{Client: cli, Host: host, Endpoint: endpoint, Revision: resp.Header.Revision}, nil
}

// DialAny tries the members on conns in order and returns the first that
// answers; the error names every member that did not, and why.
func DialAny(ctx context.Context, conns []transport.Conn) (*Client, error) {
	if len(conns) == 0 {
		return nil, errors.New("etcd client: no etcd host is reachable over SSH")
	}
	var errs []error
	for _, c := range conns {
		cli, err := Dial(ctx, c)
		if err == nil {
			return cli, nil
		}
		if ctx.Err() != nil {
			return nil, err
		}
		errs = append(errs, err)
	}
	return nil, fmt.Errorf("no etcd member answered: %w", errors.Join(errs...))
}

// readTLS reads the unit's client certificate, key and CA over conn (as
// root: the key is the member's) and builds the client's TLS setup, the
// member's certificate checked against the CA for serverName.
func readTLS(ctx context.Context, conn transport.Conn, cfg *etcdhost.EtcdConfig, serverName string) (*tls.Config, error) {
	t := &tls.Config{ServerName: serverName, MinVersion: tls.VersionTLS12}
	files := []struct{ flag, path string }{{"trusted-ca-file", cfg.TrustedCAFile}, {"cert-file", cfg.CertFile}, {"key-file", cfg.KeyFile}}
	var script strings.Builder
	for _, f := range files {
		if f.path == "" {
			script.WriteString("echo\n")
			continue
		}
		// One line each: the file base64-encoded, or "!" and why not.
		fmt.Fprintf(&script, "if out=$(base64 -w0 < %s 2>&1); then echo \"$out\"; else echo \"!$out\"; fi\n", transport.Quote(f.path))
	}
	res, err := conn.Run(ctx, script.String())
	if err != nil {
		return nil, err
	}
	lines := strings.Split(strings.TrimRight(string(res.Stdout), "\n"), "\n")
	if len(lines) != len(files) {
		return nil, fmt.Errorf("unreadable answer reading %s, %s, %s (exit %d): %s", files[0].path, files[1].path, files[2].path, res.ExitCode, strings.TrimSpace(string(res.Stderr)))
	}
	data := make([][]byte, len(files))
	for i, f := range files {
		if f.path == "" {
			continue
		}
		if strings.HasPrefix(lines[i], "!") {
			return nil, fmt.Errorf("--%s %s: %s", f.flag, f.path, strings.TrimSpace(lines[i][1:]))
		}
		if data[i], err = base64.StdEncoding.DecodeString(lines[i]); err != nil {
			return nil, fmt.Errorf("--%s %s: %w", f.flag, f.path, err)
		}
	}
	if data[0] != nil {
		t.RootCAs = x509.NewCertPool()
		if !t.RootCAs.AppendCertsFromPEM(data[0]) {
			return nil, fmt.Errorf("--trusted-ca-file %s: no PEM certificate in it", cfg.TrustedCAFile)
		}
	}
	if data[1] != nil || data[2] != nil {
		pair, err := tls.X509KeyPair(data[1], data[2])
		if err != nil {
			return nil, fmt.Errorf("--cert-file %s with --key-file %s: %w", cfg.CertFile, cfg.KeyFile, err)
		}
		t.Certificates = []tls.Certificate{pair}
	}
	return t, nil
}
