package etcdhost

// Reading a member's keys with revisions, and one key's value, through the
// host's etcdctl: the TLS and SSH paths `status` uses, for `ezrestore diff`
// and the plan's account of what a restore would undo.

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/ezrestore/ezrestore/transport"
)

// KeyRevisions is a live key and its create and mod revisions.
type KeyRevisions struct {
	Key            string
	CreateRevision int64
	ModRevision    int64
}

// StoredValue is one key's value as the member returned it.
type StoredValue struct {
	KeyRevisions
	Value   []byte
	Version int64
}

// getJSON is etcdctl's `get -w json` output.
type getJSON struct {
	Header struct {
		Revision int64 `json:"revision"`
	} `json:"header"`
	Kvs []struct {
		Key            []byte `json:"key"` // base64 in the JSON
		Value          []byte `json:"value"`
		CreateRevision int64  `json:"create_revision"`
		ModRevision    int64  `json:"mod_revision"`
		Version        int64  `json:"version"`
	} `json:"kvs"`
}

// KeysCommand lists every key with its revisions, without values. The read
// is linearizable (etcdctl's default): a member without quorum cannot answer,
// and then no member can say what the cluster holds now.
func (c EtcdClient) KeysCommand() string {
	return c.Cmd("--dial-timeout=3s", "--command-timeout=120s", "get", "", "--prefix", "--keys-only", "-w", "json")
}

// GetCommand reads one key with its value.
func (c EtcdClient) GetCommand(key string) string {
	return c.Cmd("--dial-timeout=3s", "--command-timeout=10s", "get", key, "-w", "json")
}

// ReadKeys returns the member's revision and every live key, sorted by key
// (etcd returns a range in key order).
func ReadKeys(ctx context.Context, conn transport.Conn, c EtcdClient) (int64, []KeyRevisions, error) {
	out, err := runGet(ctx, conn, c.KeysCommand())
	if err != nil {
		return 0, nil, err
	}
	keys := make([]KeyRevisions, len(out.Kvs))
	for i, kv := range out.Kvs {
		keys[i] = KeyRevisions{Key: string(kv.Key), CreateRevision: kv.CreateRevision, ModRevision: kv.ModRevision}
	}
	return out.Header.Revision, keys, nil
}

// ReadValue returns one key's value, nil when the key is not live.
func ReadValue(ctx context.Context, conn transport.Conn, c EtcdClient, key string) (*StoredValue, error) {
	out, err := runGet(ctx, conn, c.GetCommand(key))
	if err != nil || len(out.Kvs) == 0 {
		return nil, err
	}
	kv := out.Kvs[0]
	return &StoredValue{KeyRevisions: KeyRevisions{Key: string(kv.Key), CreateRevision: kv.CreateRevision, ModRevision: kv.ModRevision},
		Value: kv.Value, Version: kv.Version}, nil
}

func runGet(ctx context.Context, conn transport.Conn, cmd string) (*getJSON, error) {
	res, err := conn.Run(ctx, cmd)
	if err != nil {
		return nil, err
	}
	if res.ExitCode != 0 {
		msg := LastLine(string(res.Stderr))
		if msg == "" {
			msg = fmt.Sprintf("etcdctl exited %d", res.ExitCode)
		}
		return nil, fmt.Errorf("etcdctl get: %s", msg)
	}
	var out getJSON
	if err := json.Unmarshal(res.Stdout, &out); err != nil {
		return nil, fmt.Errorf("etcdctl get: output is not the JSON of -w json: %w", err)
	}
	return &out, nil
}

// ProbeCommand is a linearizable read of one key, bounded to seconds: it
// tells a member that can serve reads (it has quorum) from one that cannot,
// before a long listing is asked of it.
func (c EtcdClient) ProbeCommand() string {
	return c.Cmd("--dial-timeout=2s", "--command-timeout=5s", "get", "", "--prefix", "--limit=1", "--keys-only", "-w", "json")
}

// Probe asks the member for a linearizable read and returns its revision.
func Probe(ctx context.Context, conn transport.Conn, c EtcdClient) (int64, error) {
	out, err := runGet(ctx, conn, c.ProbeCommand())
	if err != nil {
		return 0, err
	}
	return out.Header.Revision, nil
}
