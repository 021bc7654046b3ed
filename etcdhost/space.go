package etcdhost

import (
	"context"
	"fmt"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/ezrestore/ezrestore/internal/bytesize"
	"github.com/ezrestore/ezrestore/transport"
)

// Space on an etcd host: what earlier runs left there (set-aside data dirs,
// staged copies), how much room the filesystems a restore writes to have,
// how much a restore needs on each, and etcd's own space (db size, quota,
// alarms). Everything here is read-only; `ezrestore prune` removes leftovers.

// Leftover kinds, as the probe names them.
const (
	KindAside       = "set-aside member"   // <data-dir>/member.before-<token>, or <data-dir>/member/.before-<token> (kept in place)
	KindAsideWal    = "set-aside WAL"      // <wal-dir>.before-<token>, or <wal-dir>/.before-<token> (kept in place)
	KindRestored    = "rolled-back member" // <data-dir>/member.restored-<token>
	KindRestoredWal = "rolled-back WAL"    // <wal-dir>.restored-<token>
	KindStaged      = "staged copy"        // <data-dir>/.ezrestore/<token>
	KindStagedWal   = "staged WAL"         // <wal-dir>.ezrestore-<token>
)

// WALSegmentBytes is what etcd preallocates for a new WAL file.
const WALSegmentBytes = 64 << 20

// Leftover is one dir an earlier run left on a host.
type Leftover struct {
	Kind string `json:"kind"`
	Path string `json:"path"`
	// Token is the run's initial cluster token, read off the name; empty when
	// the name is not one ezrestore makes (never pruned).
	Token   string    `json:"token,omitempty"`
	Bytes   int64     `json:"bytes"`
	ModTime time.Time `json:"mtime"`
}

// FSSpace is the filesystem one of the restore's dirs lives on.
type FSSpace struct {
	// Role is "data", "staging" or "wal"; Path the dir as the unit names it.
	Role string `json:"role"`
	Path string `json:"path"`
	// Dev is the device number: two roles with the same Dev share the room.
	Dev   string `json:"dev"`
	Mount string `json:"mount"`
	// Type is the filesystem's type (df -T), as "ext4" or "tmpfs".
	Type string `json:"type,omitempty"`
	Size int64  `json:"size_bytes"`
	Free int64  `json:"free_bytes"`
}

// Alarm is one active etcd alarm (`etcdctl alarm list`).
type Alarm struct {
	MemberID uint64 `json:"member_id"`
	Alarm    string `json:"alarm"`
}

// HostSpace is the space account of one etcd host.
type HostSpace struct {
	Host      string     `json:"host"`
	DataDir   string     `json:"data_dir"`
	WalDir    string     `json:"wal_dir,omitempty"`
	FS        []FSSpace  `json:"filesystems"`
	Leftovers []Leftover `json:"leftovers,omitempty"`
	// Alarms are read only when asked (status); AlarmError says why they could not be.
	Alarms     []Alarm `json:"alarms,omitempty"`
	AlarmError string  `json:"alarm_error,omitempty"`
	Error      string  `json:"error,omitempty"`
}

// Total is the space all leftovers hold.
func (h *HostSpace) Total() int64 {
	var n int64
	for _, l := range h.Leftovers {
		n += l.Bytes
	}
	return n
}

// FSOf returns the filesystem of a role ("data", "staging", "wal").
func (h *HostSpace) FSOf(role string) (FSSpace, bool) {
	for _, f := range h.FS {
		if f.Role == role {
			return f, true
		}
	}
	return FSSpace{}, false
}

// StagingRoot is where every run stages its copies on a host.
func StagingRoot(f *EtcdFacts) string { return f.Config.DataDir + "/.ezrestore" }

// spaceRole is a dir whose filesystem the space probe measures.
type spaceRole struct{ name, path string }

// spaceRoles are the dirs SpaceScript measures and ParseSpace reads, in order.
func spaceRoles(f *EtcdFacts) []spaceRole {
	roles := []spaceRole{{"data", f.Config.DataDir}, {"staging", StagingRoot(f)}}
	if f.Config.WalDir != "" {
		roles = append(roles, spaceRole{"wal", f.Config.WalDir})
	}
	return roles
}

// SpaceScript is the one read-only round trip that measures a host: the
// filesystem (device, size, free) of the data, staging and WAL dirs, each
// measured at its nearest existing ancestor, and size and mtime of every dir
// an earlier run left. With alarms, etcd's active alarms too.
//
// It starts a fixed number of processes however many dirs earlier runs left
// (one stat and one df for the filesystems, one du and one stat for all the
// leftovers): a process per dir and measure cost a busy host tens of
// milliseconds per dir, in the preflight every restore waits on.
func SpaceScript(f *EtcdFacts, alarms bool) string {
	q := transport.Quote
	c := f.Config
	var b strings.Builder
	// anc PATH sets p to PATH's nearest existing ancestor (PATH itself when it exists).
	b.WriteString(`anc() { p=$1; while [ ! -e "$p" ]; do case $p in */*) p=${p%/*}; [ -n "$p" ] || p=/ ;; *) p=. ;; esac; done; }` + "\n")
	// Per role of spaceRoles, in that order: "S dev" (stat), then df's line.
	var args []string
	for i, r := range spaceRoles(f) {
		fmt.Fprintf(&b, "anc %s; a%d=$p\n", q(r.path), i)
		args = append(args, fmt.Sprintf(`"$a%d"`, i))
	}
	// -L: a dir that is a symlink to another disk is measured there.
	fmt.Fprintf(&b, "stat -L -c 'S %%d' -- %[1]s\ndf -PkT -- %[1]s | tail -n +2\n", strings.Join(args, " "))
	// "E kind<TAB>path" for each real dir (no symlinks followed), gathered in
	// "$@"; then "U" and du's "KiB<TAB>path" lines, "T" and "mtime path" lines.
	b.WriteString("set --\n")
	// Globs follow the quoted prefix: quoted characters never expand.
	glob := func(kind, prefix string) {
		fmt.Fprintf(&b, "for p in %s*; do if [ -d \"$p\" ] && [ ! -L \"$p\" ]; then printf 'E %%s\\t%%s\\n' %s \"$p\"; set -- \"$@\" \"$p\"; fi; done\n", q(prefix), q(kind))
	}
	glob(KindAside, c.DataDir+"/member.before-")
	glob(KindRestored, c.DataDir+"/member.restored-")
	glob(KindStaged, StagingRoot(f)+"/")
	// Inside a member dir kept in place (a mount point, a symlink).
	glob(KindAside, c.DataDir+"/member/.before-")
	glob(KindRestored, c.DataDir+"/member/.restored-")
	glob(KindStaged, c.DataDir+"/member/.ezrestore-")
	if c.WalDir != "" {
		glob(KindAsideWal, c.WalDir+".before-")
		glob(KindRestoredWal, c.WalDir+".restored-")
		glob(KindStagedWal, c.WalDir+".ezrestore-")
		// Inside a WAL dir kept in place (a mount point, a symlink).
		glob(KindAsideWal, c.WalDir+"/.before-")
		glob(KindRestoredWal, c.WalDir+"/.restored-")
		glob(KindStagedWal, c.WalDir+"/.ezrestore-")
	}
	b.WriteString("if [ $# -gt 0 ]; then echo U; du -sk -- \"$@\"; echo T; stat -c '%Y %n' -- \"$@\"; fi\n")
	if alarms {
		if f.Etcdctl == "" {
			b.WriteString("echo @@noetcdctl\n")
		} else {
			quick := []string{"--dial-timeout=2s", "--command-timeout=3s"}
			fmt.Fprintf(&b, "echo @@alarms\n%s 2>&1 || echo \"@@alarmfail $?\"\n", ClientFor(f).Cmd(append(quick, "alarm", "list")...))
		}
	}
	return b.String()
}

// ParseSpace reads SpaceScript's output.
func ParseSpace(out string, f *EtcdFacts) (*HostSpace, error) {
	c := f.Config
	hs := &HostSpace{Host: f.Host, DataDir: c.DataDir, WalDir: c.WalDir}
	roles := spaceRoles(f)
	before, alarmPart, hasAlarms := strings.Cut(out, "@@alarms\n")
	var devs, dfs []string
	type entry struct{ kind, path string }
	var entries []entry
	kib, mtime := map[string]string{}, map[string]string{}
	part := ""
	for _, line := range strings.Split(before, "\n") {
		switch {
		case line == "U" || line == "T":
			part = line
		case part == "U":
			if n, p, ok := strings.Cut(line, "\t"); ok {
				kib[p] = n
			}
		case part == "T":
			if t, p, ok := strings.Cut(line, " "); ok {
				mtime[p] = t
			}
		case strings.HasPrefix(line, "S "):
			devs = append(devs, strings.TrimSpace(line[2:]))
		case strings.HasPrefix(line, "E "):
			kind, p, ok := strings.Cut(line[2:], "\t")
			if !ok {
				return nil, fmt.Errorf("unreadable leftover line %q", line)
			}
			entries = append(entries, entry{kind, p})
		case len(dfs) < len(roles) && strings.TrimSpace(line) != "":
			dfs = append(dfs, line)
		}
	}
	if len(devs) != len(roles) || len(dfs) != len(roles) {
		return nil, fmt.Errorf("the space probe measured %d and %d of %d filesystems", len(devs), len(dfs), len(roles))
	}
	for i, role := range roles {
		df := strings.Fields(dfs[i])
		// device, type, size, used, available, capacity, mount point
		if len(df) < 7 {
			return nil, fmt.Errorf("unreadable df line %q", dfs[i])
		}
		size, err1 := strconv.ParseInt(df[2], 10, 64)
		free, err2 := strconv.ParseInt(df[4], 10, 64)
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("unreadable df line %q", dfs[i])
		}
		hs.FS = append(hs.FS, FSSpace{Role: role.name, Path: role.path, Dev: devs[i],
			Mount: strings.Join(df[6:], " "), Type: df[1], Size: size * 1024, Free: free * 1024})
	}
	for _, e := range entries {
		kb, err1 := strconv.ParseInt(kib[e.path], 10, 64)
		mt, err2 := strconv.ParseInt(mtime[e.path], 10, 64)
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("no size or time read for the leftover %s", e.path)
		}
		l := Leftover{Kind: e.kind, Path: e.path, Bytes: kb * 1024, ModTime: time.Unix(mt, 0).UTC()}
		if kind, token, ok := ClassifyLeftover(l.Path, f); ok && kind == l.Kind {
			l.Token = token
		}
		hs.Leftovers = append(hs.Leftovers, l)
	}
	if strings.Contains(before, "@@noetcdctl") {
		hs.AlarmError = "no etcdctl on the host"
	}
	if hasAlarms {
		alarms, err := ParseAlarms(alarmPart)
		if err != nil {
			hs.AlarmError = err.Error()
		}
		hs.Alarms = alarms
	}
	if len(hs.FS) == 0 {
		return nil, fmt.Errorf("the space probe printed no filesystem")
	}
	sort.Slice(hs.Leftovers, func(i, j int) bool {
		a, b := hs.Leftovers[i], hs.Leftovers[j]
		if !a.ModTime.Equal(b.ModTime) {
			return a.ModTime.Before(b.ModTime)
		}
		return a.Path < b.Path
	})
	return hs, nil
}

// ParseAlarms reads `etcdctl alarm list`: lines "memberID:<decimal> alarm:<NAME>".
func ParseAlarms(out string) ([]Alarm, error) {
	var alarms []Alarm
	for _, line := range strings.Split(out, "\n") {
		line = strings.TrimSpace(line)
		// etcdctl's own log lines (JSON; 3.6 warns about ETCDCTL_API) are not alarms.
		if line == "" || strings.HasPrefix(line, "{") {
			continue
		}
		if rest, ok := strings.CutPrefix(line, "@@alarmfail"); ok {
			return alarms, fmt.Errorf("etcdctl alarm list failed (exit%s)", rest)
		}
		idPart, alarmPart, ok := strings.Cut(line, " ")
		id, found := strings.CutPrefix(idPart, "memberID:")
		name, found2 := strings.CutPrefix(strings.TrimSpace(alarmPart), "alarm:")
		if !ok || !found || !found2 {
			return alarms, fmt.Errorf("etcdctl alarm list: %s", line)
		}
		n, err := strconv.ParseUint(id, 10, 64)
		if err != nil {
			return alarms, fmt.Errorf("etcdctl alarm list: member ID in %q", line)
		}
		alarms = append(alarms, Alarm{MemberID: n, Alarm: strings.TrimSpace(name)})
	}
	return alarms, nil
}

// ProbeSpace measures one etcd host in one read-only round trip.
func ProbeSpace(ctx context.Context, conn transport.Conn, f *EtcdFacts, alarms bool) (*HostSpace, error) {
	res, err := conn.Run(ctx, SpaceScript(f, alarms))
	if err != nil {
		return nil, err
	}
	hs, err := ParseSpace(string(res.Stdout), f)
	if err != nil {
		return nil, fmt.Errorf("measuring space: %w (exit %d: %s)", err, res.ExitCode, strings.TrimSpace(string(res.Stderr)))
	}
	return hs, nil
}

// spaceOf is the reading taken with the facts (planning reads each host once),
// or a new one when there is none.
func SpaceOf(ctx context.Context, conn transport.Conn, f *EtcdFacts) (*HostSpace, error) {
	if hs := f.Space; hs != nil {
		return hs, nil
	}
	return ProbeSpace(ctx, conn, f, false)
}

// ClassifyLeftover says whether path is a dir ezrestore made beside etcd's
// data on this host, and of which run: exactly <data-dir>/member.before-<token>,
// <data-dir>/member.restored-<token>, <data-dir>/.ezrestore/<token>, or
// <wal-dir>.before-/.restored-/.ezrestore-<token>, or the same names inside
// the WAL dir (<wal-dir>/.before-<token>... where the WAL dir is a mount
// point or a symlink, kept in place), with a valid token. Nothing
// else is ever removed; the live member and WAL dirs never match.
func ClassifyLeftover(p string, f *EtcdFacts) (kind, token string, ok bool) {
	c := f.Config
	if p != path.Clean(p) || !path.IsAbs(p) {
		return "", "", false
	}
	type pat struct{ kind, prefix string }
	pats := []pat{
		{KindAside, c.DataDir + "/member.before-"},
		{KindRestored, c.DataDir + "/member.restored-"},
		{KindStaged, StagingRoot(f) + "/"},
		{KindAside, c.DataDir + "/member/.before-"},
		{KindRestored, c.DataDir + "/member/.restored-"},
		{KindStaged, c.DataDir + "/member/.ezrestore-"},
	}
	if c.WalDir != "" {
		pats = append(pats, pat{KindAsideWal, c.WalDir + ".before-"}, pat{KindRestoredWal, c.WalDir + ".restored-"}, pat{KindStagedWal, c.WalDir + ".ezrestore-"},
			pat{KindAsideWal, c.WalDir + "/.before-"}, pat{KindRestoredWal, c.WalDir + "/.restored-"}, pat{KindStagedWal, c.WalDir + "/.ezrestore-"})
	}
	// Never the live data: not the data, member or WAL dir, nor a dir holding one.
	live := []string{c.DataDir, c.DataDir + "/member"}
	if c.WalDir != "" {
		live = append(live, c.WalDir)
	}
	for _, l := range live {
		if strings.HasPrefix(path.Clean(l)+"/", p+"/") {
			return "", "", false
		}
	}
	for _, pt := range pats {
		if t, found := strings.CutPrefix(p, pt.prefix); found && ValidToken(t) == nil {
			return pt.kind, t, true
		}
	}
	return "", "", false
}

// Need is room a restore needs on one filesystem for one thing it writes.
type Need struct {
	What  string `json:"what"`
	Role  string `json:"role"` // the filesystem: "data", "staging" or "wal"
	Bytes int64  `json:"bytes"`
}

// SpaceNeeded lists what a restore of a snapshot of snapshotSize writes on
// a host, and where: the staged snapshot (staging dir), the restored db
// (about the snapshot's size, written in the staging dir, then renamed into
// the data dir: moved by copy when the staging dir is a filesystem of its
// own), and the 64 MB WAL segment etcd preallocates (the WAL dir, or with the
// db when the unit has no --wal-dir).
func SpaceNeeded(f *EtcdFacts, snapshotSize int64, hs *HostSpace) []Need {
	// A member dir kept in place (a mount point, a symlink) has the
	// restore write inside it, on its own filesystem: nothing moves later.
	restoreRole := "staging"
	if f.MemberInPlace() {
		restoreRole = "member"
	}
	needs := []Need{
		{What: "staged snapshot", Role: "staging", Bytes: snapshotSize},
		{What: "restored db", Role: restoreRole, Bytes: snapshotSize},
	}
	walRole := restoreRole
	if f.Config.WalDir != "" {
		walRole = "wal"
	}
	needs = append(needs, Need{What: "new WAL segment", Role: walRole, Bytes: WALSegmentBytes})
	st, ok1 := hs.FSOf("staging")
	data, ok2 := hs.FSOf("data")
	if restoreRole == "staging" && ok1 && ok2 && st.Dev != data.Dev {
		needs = append(needs, Need{What: "restored db moved into the data dir", Role: "data", Bytes: snapshotSize})
		if walRole == "staging" {
			needs = append(needs, Need{What: "WAL segment moved into the data dir", Role: "data", Bytes: WALSegmentBytes})
		}
	}
	return needs
}

// SpaceMargin is what each filesystem must keep free beyond a restore's
// needs: a tenth of them, at least 16 MiB, so etcd can still write once started.
func SpaceMargin(need int64) int64 { return max(need/10, 16<<20) }

// CheckSpace compares needs with the free space measured, summing needs that
// land on one filesystem. It returns what it found, one line per filesystem,
// and an error naming every filesystem that is short, with the numbers.
func CheckSpace(needs []Need, hs *HostSpace) ([]string, error) {
	type fsNeed struct {
		fs    FSSpace
		roles []string
		parts []string
		sum   int64
	}
	var order []string
	byDev := map[string]*fsNeed{}
	for _, n := range needs {
		fs, ok := hs.FSOf(n.Role)
		if !ok {
			return nil, fmt.Errorf("no measure of the %s dir's filesystem", n.Role)
		}
		fn := byDev[fs.Dev]
		if fn == nil {
			fn = &fsNeed{fs: fs}
			byDev[fs.Dev] = fn
			order = append(order, fs.Dev)
		}
		for _, other := range hs.FS {
			if other.Dev == fs.Dev && !containsStr(fn.roles, other.Role) {
				fn.roles = append(fn.roles, other.Role)
			}
		}
		fn.parts = append(fn.parts, fmt.Sprintf("%s %s", n.What, bytesize.Human(n.Bytes)))
		fn.sum += n.Bytes
	}
	var found, short []string
	for _, dev := range order {
		fn := byDev[dev]
		margin := SpaceMargin(fn.sum)
		total := fn.sum + margin
		where := fmt.Sprintf("the %sfilesystem on %s (%s dir %s)", typed(fn.fs.Type), fn.fs.Mount, strings.Join(fn.roles, " and "), dirsOf(hs, fn.roles))
		line := fmt.Sprintf("%s: %s free, needs %s (%s, margin %s)", where, bytesize.Human(fn.fs.Free),
			bytesize.Human(total), strings.Join(fn.parts, " + "), bytesize.Human(margin))
		found = append(found, line)
		if fn.fs.Free < total {
			short = append(short, fmt.Sprintf("%s; free %s there (old runs' data: see `ezrestore prune`)", line, bytesize.Human(total-fn.fs.Free)))
		}
	}
	if len(short) > 0 {
		return found, fmt.Errorf("not enough free space for what the restore writes:\n  %s", strings.Join(short, "\n  "))
	}
	return found, nil
}

// typed is a filesystem type to put before "filesystem", or nothing.
func typed(t string) string {
	if t == "" {
		return ""
	}
	return t + " "
}

func dirsOf(hs *HostSpace, roles []string) string {
	var ds []string
	for _, r := range roles {
		if fs, ok := hs.FSOf(r); ok {
			ds = append(ds, fs.Path)
		}
	}
	return strings.Join(ds, ", ")
}

func containsStr(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// PreflightSpace is preflight's space check on one etcd host: one round trip
// measures the staging, data and WAL filesystems, then the restore's needs
// are checked against them. It returns the line for the plan, or the refusal.
func PreflightSpace(ctx context.Context, conn transport.Conn, f *EtcdFacts, snapshotSize int64) (string, error) {
	hs, err := SpaceOf(ctx, conn, f)
	if err != nil {
		return "", err
	}
	if m, ok := f.LayoutOf("member"); ok && f.MemberInPlace() {
		// The space probe measures the data, staging and WAL dirs; a
		// member dir on a filesystem of its own was measured by the layout.
		withMember := *hs
		withMember.FS = append(append([]FSSpace(nil), hs.FS...), FSSpace{Role: "member", Path: m.Path, Dev: m.Dev,
			Mount: m.Mount, Type: m.FSType, Size: m.Size, Free: m.Free})
		hs = &withMember
	}
	found, err := CheckSpace(SpaceNeeded(f, snapshotSize, hs), hs)
	if err != nil {
		return "", err
	}
	return "space: " + strings.Join(found, "; "), nil
}

// RunSpace is what one run (one token) left on one host.
type RunSpace struct {
	Token   string     `json:"token"`
	Bytes   int64      `json:"bytes"`
	Newest  time.Time  `json:"newest"`
	Entries []Leftover `json:"entries"`
}

// ByRun groups a host's leftovers by run token, newest run first; entries
// whose name carries no token come last under Token "".
func (h *HostSpace) ByRun() []RunSpace {
	idx := map[string]int{}
	var out []RunSpace
	for _, l := range h.Leftovers {
		i, ok := idx[l.Token]
		if !ok {
			i = len(out)
			idx[l.Token] = i
			out = append(out, RunSpace{Token: l.Token})
		}
		out[i].Entries = append(out[i].Entries, l)
		out[i].Bytes += l.Bytes
		if l.ModTime.After(out[i].Newest) {
			out[i].Newest = l.ModTime
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		if (out[i].Token == "") != (out[j].Token == "") {
			return out[j].Token == ""
		}
		return out[i].Newest.After(out[j].Newest)
	})
	return out
}

// FreeLines describes the data, staging and WAL filesystems in one line each
// (one line for roles that share a filesystem).
func (h *HostSpace) FreeLines() []string {
	var order []string
	roles := map[string][]FSSpace{}
	for _, f := range h.FS {
		if _, ok := roles[f.Dev]; !ok {
			order = append(order, f.Dev)
		}
		roles[f.Dev] = append(roles[f.Dev], f)
	}
	var lines []string
	for _, dev := range order {
		fss := roles[dev]
		var names []string
		for _, f := range fss {
			names = append(names, f.Role+" "+f.Path)
		}
		f := fss[0]
		lines = append(lines, fmt.Sprintf("%s free of %s on %s (%s)", bytesize.Human(f.Free), bytesize.Human(f.Size), f.Mount, strings.Join(names, ", ")))
	}
	return lines
}

// AccountLines is a host's space account for the plan and status: free space
// per filesystem, then what earlier runs left, per run and in total.
// current is this run's token (its leftovers are a resumed run's, not old).
func AccountLines(hs *HostSpace, current string) []string {
	var lines []string
	for _, l := range hs.FreeLines() {
		lines = append(lines, "free: "+l)
	}
	runs := hs.ByRun()
	if len(runs) == 0 {
		return append(lines, "nothing left by earlier runs")
	}
	lines = append(lines, fmt.Sprintf("earlier runs hold %s in %d dirs of %d runs (`ezrestore prune` frees them)", bytesize.Human(hs.Total()), len(hs.Leftovers), len(runs)))
	for _, r := range runs {
		label := r.Token
		switch {
		case label == "":
			label = "(names ezrestore does not make; left alone)"
		case label == current:
			label += " (this run's)"
		}
		var parts []string
		for _, l := range r.Entries {
			parts = append(parts, fmt.Sprintf("%s %s %s", l.Kind, l.Path, bytesize.Human(l.Bytes)))
		}
		lines = append(lines, fmt.Sprintf("  %s, %s, %s: %s", label, r.Newest.Local().Format("2006-01-02 15:04"), bytesize.Human(r.Bytes), strings.Join(parts, "; ")))
	}
	return lines
}

// DefaultQuotaBytes is etcd's backend quota when the unit sets none (2 GiB).
const DefaultQuotaBytes = 2 << 30

// QuotaBytes is the backend quota the unit gives etcd, and where it was read.
// 0 means no quota (a negative --quota-backend-bytes).
func QuotaBytes(f *EtcdFacts) (int64, string) {
	c := f.Config
	v := strings.TrimSpace(c.QuotaBackendBytes)
	if v == "" {
		return DefaultQuotaBytes, "etcd default"
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		fl, ferr := strconv.ParseFloat(v, 64)
		if ferr != nil {
			return DefaultQuotaBytes, fmt.Sprintf("etcd default (unreadable %q in %s)", v, c.From["quota-backend-bytes"])
		}
		n = int64(fl)
	}
	switch {
	case n == 0:
		return DefaultQuotaBytes, "etcd default (" + c.From["quota-backend-bytes"] + " is 0)"
	case n < 0:
		return 0, c.From["quota-backend-bytes"] + " (negative: no quota)"
	}
	return n, c.From["quota-backend-bytes"]
}

// MemberSpace is etcd's own space on one member.
type MemberSpace struct {
	Host   string `json:"host"`
	Name   string `json:"name,omitempty"`
	DBSize int64  `json:"db_size"`
	// InUse is 0 when the member did not report it (before etcd 3.4).
	InUse     int64    `json:"db_size_in_use"`
	Quota     int64    `json:"quota"`
	QuotaFrom string   `json:"quota_from"`
	Alarms    []string `json:"alarms,omitempty"`
}

// UsedPercent is the db size as a share of the quota (0 without a quota).
func (m MemberSpace) UsedPercent() float64 {
	if m.Quota <= 0 {
		return 0
	}
	return 100 * float64(m.DBSize) / float64(m.Quota)
}

// Fragmented is true when more than half the db file is free pages (and at
// least FragmentFloor of it: a small fresh db is mostly free pages, harmlessly).
func (m MemberSpace) Fragmented() bool {
	free := m.DBSize - m.InUse
	return m.InUse > 0 && free > m.DBSize/2 && free >= FragmentFloor
}

// FragmentFloor is the least free space in a db worth a defragmentation.
const FragmentFloor = 16 << 20

// QuotaWarnPercent is the share of its quota past which a member is flagged.
const QuotaWarnPercent = 80

// EtcdSpaceReport is etcd's own space on every member, with the verdict and,
// when something needs doing, the commands that do it.
type EtcdSpaceReport struct {
	Members []MemberSpace `json:"members"`
	// Verdict lines; empty when every member is fine.
	Verdict []string `json:"verdict,omitempty"`
	// Fix is the commands to run, in order, each prefixed by its host.
	Fix []string `json:"fix,omitempty"`
}

// JudgeEtcdSpace reads etcd's space off the members' statuses, their units'
// quotas and the active alarms, and says what to do about it. Read-only: the
// fix is printed, never run.
func JudgeEtcdSpace(statuses []MemberStatus, facts func(host string) *EtcdFacts, alarms []Alarm) *EtcdSpaceReport {
	rep := &EtcdSpaceReport{}
	byID := map[uint64]string{}
	var maxRev int64
	for _, s := range statuses {
		if s.Error == "" {
			byID[s.MemberID] = s.Host
			maxRev = max(maxRev, s.Revision)
		}
	}
	seen := map[string]bool{}
	var nospace, corrupt []string
	memberAlarms := map[string][]string{}
	for _, a := range alarms {
		key := fmt.Sprintf("%x/%s", a.MemberID, a.Alarm)
		if seen[key] {
			continue
		}
		seen[key] = true
		who := byID[a.MemberID]
		if who == "" {
			who = fmt.Sprintf("member %x", a.MemberID)
		}
		memberAlarms[who] = append(memberAlarms[who], a.Alarm)
		switch a.Alarm {
		case "NOSPACE":
			nospace = append(nospace, who)
		case "CORRUPT":
			corrupt = append(corrupt, who)
		}
	}
	var over, frag []MemberSpace
	for _, s := range statuses {
		if s.Error != "" {
			continue
		}
		ms := MemberSpace{Host: s.Host, Name: s.Name(), DBSize: s.DBSize, InUse: s.DBSizeInUse, Alarms: memberAlarms[s.Host]}
		if f := facts(s.Host); f != nil {
			ms.Quota, ms.QuotaFrom = QuotaBytes(f)
		}
		if s.DBSizeQuota > 0 {
			ms.Quota, ms.QuotaFrom = s.DBSizeQuota, "reported by etcd"
		}
		rep.Members = append(rep.Members, ms)
		if ms.Quota > 0 && ms.UsedPercent() >= QuotaWarnPercent {
			over = append(over, ms)
		}
		if ms.Fragmented() {
			frag = append(frag, ms)
		}
	}
	for _, who := range append(nospace, corrupt...) {
		if _, up := byHost(statuses, who); !up && !seen["listed/"+who] {
			seen["listed/"+who] = true
			rep.Members = append(rep.Members, MemberSpace{Host: who, Alarms: memberAlarms[who]})
		}
	}
	if len(nospace) > 0 {
		rep.Verdict = append(rep.Verdict, fmt.Sprintf("ALARM NOSPACE raised by %s: etcd refuses every write (Kubernetes cannot change anything) until the db is below its quota and the alarm is disarmed", strings.Join(nospace, ", ")))
	}
	if len(corrupt) > 0 {
		rep.Verdict = append(rep.Verdict, fmt.Sprintf("ALARM CORRUPT raised by %s: members hold different data; do not just disarm it: restore the cluster from a good snapshot (`ezrestore restore`)", strings.Join(corrupt, ", ")))
	}
	for _, m := range over {
		rep.Verdict = append(rep.Verdict, fmt.Sprintf("%s: db %s is %.0f%% of its %s quota (%s); at 100%% etcd raises NOSPACE and stops taking writes",
			m.Host, bytesize.Human(m.DBSize), m.UsedPercent(), bytesize.Human(m.Quota), m.QuotaFrom))
	}
	for _, m := range frag {
		rep.Verdict = append(rep.Verdict, fmt.Sprintf("%s: db %s holds only %s of data; a defragmentation gives back %s",
			m.Host, bytesize.Human(m.DBSize), bytesize.Human(m.InUse), bytesize.Human(m.DBSize-m.InUse)))
	}
	if len(nospace) == 0 && len(over) == 0 && len(frag) == 0 {
		return rep
	}
	rep.Fix = spaceFix(statuses, facts, maxRev, len(nospace) > 0, len(over) > 0 || len(nospace) > 0)
	return rep
}

func byHost(statuses []MemberStatus, host string) (MemberStatus, bool) {
	for _, s := range statuses {
		if s.Host == host && s.Error == "" {
			return s, true
		}
	}
	return MemberStatus{}, false
}

// spaceFix is etcd's own recovery, as commands for the operator: compact to
// the current revision, defragment one member at a time (followers first,
// the leader last: a member is blocked while it defragments), then disarm.
func spaceFix(statuses []MemberStatus, facts func(string) *EtcdFacts, rev int64, disarm, full bool) []string {
	var up []MemberStatus
	for _, s := range statuses {
		if s.Error == "" && facts(s.Host) != nil {
			up = append(up, s)
		}
	}
	if len(up) == 0 {
		return nil
	}
	sort.SliceStable(up, func(i, j int) bool { return !up[i].IsLeader() && up[j].IsLeader() })
	var fix []string
	if full {
		fix = append(fix, "# first delete what is not needed (reads and deletes still work), or raise --quota-backend-bytes in etcd.service on every member and restart them one at a time")
	}
	first := ClientFor(facts(up[0].Host))
	// The revision is read when the command runs: deletes made first move it.
	compact := fmt.Sprintf(`rev=$(%s | grep -o '"revision":[0-9]*' | head -n 1 | cut -d: -f2) && %s "$rev"`,
		first.Cmd("endpoint", "status", "-w", "json"), first.Cmd("compact"))
	fix = append(fix, fmt.Sprintf("# compact the history up to the current revision (%d now, read again when run):", rev),
		up[0].Host+": "+compact,
		"# defragment one member at a time, the leader last:")
	for _, s := range up {
		fix = append(fix, s.Host+": "+ClientFor(facts(s.Host)).Cmd("--command-timeout=60s", "defrag"))
	}
	if disarm {
		fix = append(fix, "# then clear the alarm:", up[0].Host+": "+first.Cmd("alarm", "disarm"))
	}
	return fix
}
