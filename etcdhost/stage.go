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
	Restored string // where a rollback moves the restored member dir
	// MemberInPlace: member/ is a mount point or a symlink, so it stays
	// where it is and its contents move: the restore writes Data inside it
	// (its member/ is what moves in), Aside and Restored are dirs inside it.
	MemberInPlace bool
	LiveWal       string // the unit's --wal-dir
	AsideWal      string // where the old WAL dir is set aside
	// RestoredWal is where a rollback moves the restored WAL.
	RestoredWal string
	// WalInPlace: the WAL dir is a mount point or a symlink, so it stays
	// where it is and its contents move: Wal, AsideWal and RestoredWal are
	// dirs inside it (on its filesystem), not beside it.
	WalInPlace bool
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
	s.Restored = RestoredPath(s.Member, token)
	if m, ok := f.LayoutOf("member"); ok && m.InPlace() {
		s.MemberInPlace = true
		s.Data = s.Member + "/.ezrestore-" + token
		s.Aside = s.Member + "/.before-" + token
		s.Restored = s.Member + "/.restored-" + token
	}
	if w := f.Config.WalDir; w != "" {
		s.LiveWal = w
		s.Wal = w + ".ezrestore-" + token
		s.AsideWal = w + ".before-" + token
		s.RestoredWal = RestoredPath(w, token)
		if f.WalInPlace() {
			s.WalInPlace = true
			s.Wal = w + "/.ezrestore-" + token
			s.AsideWal = w + "/.before-" + token
			s.RestoredWal = w + "/.restored-" + token
		}
	}
	return s
}

// InPlaceSkip is find(1)'s test for the entries of a dir kept in place that
// are not etcd's: what ezrestore keeps inside it (set-aside, staged and
// rolled-back dirs of any run) and a filesystem root's lost+found.
const InPlaceSkip = `! -name '.before-*' ! -name '.restored-*' ! -name '.ezrestore-*' ! -name lost+found`

// MoveContentsCommand moves every entry of from (InPlaceSkip aside) into
// the existing dir to, by rename: both are on one filesystem. -H: from may
// be a symlink to the dir.
func MoveContentsCommand(from, to string) string {
	q := transport.Quote
	return fmt.Sprintf("find -H %s -mindepth 1 -maxdepth 1 %s -exec mv -t %s -- {} +", q(from), InPlaceSkip, q(to))
}

// putBack is the command that undoes the swap on one host, keeping the
// restored data beside it: nothing is deleted either way. It is meant to be
// run on every etcd host at once: etcd's unit is Type=notify and a member is
// not ready without a quorum, so a blocking `systemctl start` on the first
// host would wait (and fail) for peers not started yet; --no-block returns at
// once and `ezrestore status` then says whether the old cluster is back.
func PutBackCommand(st Stage, token string) string {
	cmd := "systemctl stop etcd && " + putBackOne(st.Member, st.Aside, st.Restored, st.MemberInPlace)
	if st.LiveWal != "" {
		cmd += " && " + putBackOne(st.LiveWal, st.AsideWal, st.RestoredWal, st.WalInPlace)
	}
	return cmd + " && systemctl start --no-block etcd"
}

// putBackOne is the put-back of one dir: renamed, or, for a dir kept in
// place (a mount point, a symlink), its contents moved.
func putBackOne(live, aside, restored string, inPlace bool) string {
	q := transport.Quote
	if inPlace {
		return fmt.Sprintf("if [ -e %[1]s ]; then mkdir -m 0700 -- %[2]s && %[3]s && %[4]s && rmdir -- %[1]s; fi",
			q(aside), q(restored), MoveContentsCommand(live, restored), MoveContentsCommand(aside, live))
	}
	return fmt.Sprintf("if [ -e %[1]s ]; then mv -T -- %[2]s %[3]s; mv -T -- %[1]s %[2]s; fi", q(aside), q(live), q(restored))
}

func RestoredPath(live, token string) string { return live + ".restored-" + token }
