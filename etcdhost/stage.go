package etcdhost

import (
	"fmt"
	"regexp"

	"github.com/ezrestore/ezrestore/transport"
)

// stage names every path a restore uses on one etcd host. They depend only
// on the unit's dirs and the run's token, so a run resumed with --from-step
// (which reuses the token) finds what the earlier run left.
type Stage struct {
	Dir      string // private staging dir inside the data dir, 0700
	Snapshot string // the pushed snapshot
	Data     string // the restore's output data dir
	Wal      string // the restore's output WAL dir, when the unit has --wal-dir
	Member   string // the live <data-dir>/member
	Aside    string // where the old member dir is set aside
	LiveWal  string // the unit's --wal-dir
	AsideWal string // where the old WAL dir is set aside
}

var tokenRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$`)

// ValidToken refuses tokens that could not safely name a directory.
func ValidToken(t string) error {
	if !tokenRE.MatchString(t) {
		return fmt.Errorf("initial cluster token %q: use letters, digits, '.', '_' and '-' (up to 100)", t)
	}
	return nil
}

func StageFor(token string, f *EtcdFacts) Stage {
	d := f.Config.DataDir
	s := Stage{
		Dir:    d + "/.ezrestore/" + token,
		Member: d + "/member",
		Aside:  d + "/member.before-" + token,
	}
	s.Snapshot = s.Dir + "/snapshot.db"
	s.Data = s.Dir + "/data"
	if w := f.Config.WalDir; w != "" {
		s.LiveWal = w
		s.Wal = w + ".ezrestore-" + token
		s.AsideWal = w + ".before-" + token
	}
	return s
}

// putBack is the command that undoes the swap on one host, keeping the
// restored data beside it: nothing is deleted either way. It is meant to be
// run on every etcd host at once: etcd's unit is Type=notify and a member is
// not ready without a quorum, so a blocking `systemctl start` on the first
// host would wait (and fail) for peers not started yet; --no-block returns at
// once and `ezrestore status` then says whether the old cluster is back.
func PutBackCommand(st Stage, token string) string {
	q := transport.Quote
	cmd := fmt.Sprintf("systemctl stop etcd && if [ -e %[1]s ]; then mv -T -- %[2]s %[3]s; mv -T -- %[1]s %[2]s; fi",
		q(st.Aside), q(st.Member), q(RestoredPath(st.Member, token)))
	if st.LiveWal != "" {
		cmd += fmt.Sprintf(" && if [ -e %[1]s ]; then mv -T -- %[2]s %[3]s; mv -T -- %[1]s %[2]s; fi",
			q(st.AsideWal), q(st.LiveWal), q(RestoredPath(st.LiveWal, token)))
	}
	return cmd + " && systemctl start --no-block etcd"
}

func RestoredPath(live, token string) string { return live + ".restored-" + token }
