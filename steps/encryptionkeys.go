package steps

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"github.com/ezrestore/ezrestore/atrest"
	"github.com/ezrestore/ezrestore/inventory"
	"github.com/ezrestore/ezrestore/orchestrator"
)

// encryptionScan is the snapshot's values encrypted at rest, read once per
// run by the first master's preflight (atrest.Scan).
type encryptionScan struct {
	once  sync.Once
	usage *atrest.Usage
	err   error
}

func (r *Restore) encryptionUsage() (*atrest.Usage, error) {
	r.atRest.once.Do(func() { r.atRest.usage, r.atRest.err = atrest.Scan(r.Snapshot.Path) })
	return r.atRest.usage, r.atRest.err
}

// startEncryptionScan reads the snapshot's encrypted values beside the
// hosts' reads when masters will need them, so that a big snapshot's scan
// does not wait for the first master (once checked, see SnapshotReady).
func (p *Preflight) startEncryptionScan(hosts []*inventory.Host) {
	if p.r.Snapshot.Member != "" {
		return // no file yet: see checkEncryptionKeys
	}
	for _, h := range hosts {
		if h.InGroup(inventory.GroupMaster) {
			go func() {
				if p.r.SnapshotReady() == nil {
					p.r.encryptionUsage()
				}
			}()
			return
		}
	}
}

// checkEncryptionKeys is preflight's check on a master: when the snapshot
// holds values encrypted at rest, the master's EncryptionConfiguration
// (kube-apiserver's --encryption-provider-config) holds every key they
// were encrypted with; else its apiserver could not read them after the
// restore. It returns the check's line for the plan.
func (p *Preflight) checkEncryptionKeys(ctx context.Context, env *orchestrator.Env, host string) (string, error) {
	if err := p.r.SnapshotReady(); err != nil {
		return "", err
	}
	if m := p.r.Snapshot.Member; m != "" {
		// The copy is made after preflight, once etcd stops there; and a
		// member's own data was written with the keys the masters use now
		// (a value under a key they lost is unreadable in the live cluster
		// already, restore or not).
		return fmt.Sprintf("encryption at rest: not checked: the snapshot is member %s's own data, copied after preflight", m), nil
	}
	u, err := p.r.encryptionUsage()
	if err != nil {
		return "", fmt.Errorf("reading the snapshot's values encrypted at rest: %w", err)
	}
	if u.Empty() {
		return "encryption at rest: the snapshot holds no encrypted value", nil
	}
	conn, err := env.Conn(host)
	if err != nil {
		return "", err
	}
	m, err := atrest.ReadMaster(ctx, conn)
	if err != nil {
		return "", err
	}
	uses := u.Uses()
	if err := atrest.Check(uses, []*atrest.Master{m}, "the snapshot holds"); err != nil {
		return "", err
	}
	var keys []string
	for _, use := range uses {
		keys = append(keys, fmt.Sprintf("%d %s with %s %s", use.Count, use.GroupResource, use.Provider, use.Key))
	}
	return fmt.Sprintf("encryption at rest: %s holds the keys of the snapshot's %s", m.Path, strings.Join(keys, ", ")), nil
}
