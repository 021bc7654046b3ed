package etcdhost

import (
	"context"
	"fmt"
	"strings"

	"github.com/ezrestore/ezrestore/transport"
)

// ReadEtcdConfig is how the host's etcd unit starts etcd, read-only (one
// round trip, two when the unit points at files of its own), for callers
// that need only the unit: the etcd client (etcdclient) takes its client
// URL and TLS files from it, as etcdctl does in status and backup.
func ReadEtcdConfig(ctx context.Context, conn transport.Conn) (*EtcdConfig, error) {
	cfg, _, err := readEtcdConfig(ctx, conn, nil)
	return cfg, err
}

// UnitFlag is the value of --name in the ExecStart of unit on the host
// (`systemctl cat`, drop-ins applied, the unit's environment expanded),
// found false when the unit does not set it. A missing unit is an error.
func UnitFlag(ctx context.Context, conn transport.Conn, unit, name string) (value string, found bool, err error) {
	res, err := conn.Run(ctx, "systemctl cat "+transport.Quote(unit))
	if err != nil {
		return "", false, err
	}
	if res.ExitCode != 0 {
		return "", false, fmt.Errorf("systemctl cat %s: %s", unit, strings.TrimSpace(string(res.Stderr)))
	}
	u, err := ParseUnit(string(res.Stdout))
	if err != nil {
		return "", false, fmt.Errorf("%s: %w", unit, err)
	}
	value, found = flagValue(expandEnv(u.ExecStart, u.Environment), name)
	return value, found, nil
}
