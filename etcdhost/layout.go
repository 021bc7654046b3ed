package etcdhost

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/ezrestore/ezrestore/internal/bytesize"
	"github.com/ezrestore/ezrestore/transport"
)

// The storage layout of the dirs a restore touches. etcd's hardware guidance
// puts the WAL (or the whole data dir) on a disk of its own: the dir is the
// mount point of its filesystem, or a symlink to a dir on that disk. Such a
// dir must not be renamed (a mount point cannot be, `mv` says "Device or
// resource busy"; a renamed symlink would leave a plain dir on the root disk
// in its place). The restore then moves what is inside it instead, within
// that same filesystem (see InPlace).

// DirLayout is how one dir the restore touches is stored, read by preflight.
type DirLayout struct {
	// Role is "data", "member", "staging", "wal" or "member/wal"; Path the
	// dir as the unit names it.
	Role string `json:"role"`
	Path string `json:"path"`
	// Symlink is true when Path itself is a symlink; Target is where it
	// leads, fully resolved (for one that leads nowhere, its own text).
	Symlink bool   `json:"symlink,omitempty"`
	Target  string `json:"target,omitempty"`
	Exists  bool   `json:"exists"`
	// MountPoint is true when the resolved dir is the root of a mount.
	MountPoint bool `json:"mount_point,omitempty"`
	// The filesystem the dir is on: its mount point, type, source, device
	// number (stat's %d) and whether it is mounted read-only.
	Mount    string `json:"mount,omitempty"`
	FSType   string `json:"fs_type,omitempty"`
	Source   string `json:"source,omitempty"`
	Dev      string `json:"dev,omitempty"`
	ReadOnly bool   `json:"read_only,omitempty"`
	Size     int64  `json:"size_bytes,omitempty"`
	Free     int64  `json:"free_bytes,omitempty"`
	// Owner and mode of the dir (of the resolved dir for a symlink).
	UID   int    `json:"uid"`
	GID   int    `json:"gid"`
	Owner string `json:"owner,omitempty"`
	Group string `json:"group,omitempty"`
	Mode  string `json:"mode,omitempty"` // octal, as stat's %a
}

// InPlace is true when the restore must leave the dir where it is and move
// its contents instead: it is a mount point or a symlink.
func (d DirLayout) InPlace() bool { return d.Exists && (d.MountPoint || d.Symlink) }

// layoutRoles are the dirs LayoutScript reads, in order.
func layoutRoles(f *EtcdFacts) []spaceRole {
	c := f.Config
	roles := []spaceRole{{"data", c.DataDir}, {"member", c.DataDir + "/member"}, {"staging", StagingRoot(f)}}
	if c.WalDir != "" {
		roles = append(roles, spaceRole{"wal", c.WalDir})
	} else {
		// The WAL inside member/ on a disk of its own (a symlink or a
		// mount there) would not survive member/ being set aside whole.
		roles = append(roles, spaceRole{"member/wal", c.DataDir + "/member/wal"})
	}
	return roles
}

// LayoutScript prints, read-only, one tab-separated line per dir of
// layoutRoles: "L", role, symlink (0/1), where it leads, exists (0/1), then
// for an existing dir: the fully resolved path, device, uid, gid, mode,
// owner, group, block size, blocks, free blocks, the parent's device, and
// findmnt's target, type, source and options of the filesystem holding it
// ("-" without findmnt). A handful of processes per dir, in the gather's
// last round trip.
func LayoutScript(f *EtcdFacts) string {
	var b strings.Builder
	b.WriteString(`lay() {
  if [ -L "$2" ]; then l=1; t=$(readlink -f -- "$2" 2>/dev/null || readlink -- "$2" || true); else l=0; t=; fi
  if [ ! -e "$2" ]; then printf 'L\t%s\t%s\t%s\t0\n' "$1" "$l" "$t"; return; fi
  r=$(readlink -f -- "$2")
  s=$(stat -L -c '%d	%u	%g	%a	%U	%G' -- "$2")
  v=$(stat -L -f -c '%S	%b	%a' -- "$2")
  pd=$(stat -L -c %d -- "$r/..")
  m=$(findmnt -n -r -o TARGET,FSTYPE,SOURCE,OPTIONS -T "$r" 2>/dev/null | head -n 1 | tr ' ' '\t')
  printf 'L\t%s\t%s\t%s\t1\t%s\t%s\t%s\t%s\t%s\n' "$1" "$l" "$t" "$r" "$s" "$v" "$pd" "${m:--}"
}
`)
	for _, r := range layoutRoles(f) {
		fmt.Fprintf(&b, "lay %s %s\n", r.name, transport.Quote(r.path))
	}
	return b.String()
}

// ParseLayout reads LayoutScript's output.
func ParseLayout(out string, f *EtcdFacts) ([]DirLayout, error) {
	roles := layoutRoles(f)
	byRole := map[string]DirLayout{}
	for _, line := range strings.Split(out, "\n") {
		if !strings.HasPrefix(line, "L\t") {
			continue
		}
		fl := strings.Split(line, "\t")
		if len(fl) < 5 {
			return nil, fmt.Errorf("unreadable layout line %q", line)
		}
		d := DirLayout{Role: fl[1], Symlink: fl[2] == "1", Target: fl[3], Exists: fl[4] == "1"}
		if d.Exists {
			if len(fl) < 16 {
				return nil, fmt.Errorf("unreadable layout line %q", line)
			}
			real := fl[5]
			var errs [6]error
			d.Dev = fl[6]
			d.UID, errs[0] = strconv.Atoi(fl[7])
			d.GID, errs[1] = strconv.Atoi(fl[8])
			d.Mode, d.Owner, d.Group = fl[9], fl[10], fl[11]
			var bsize, blocks, free int64
			bsize, errs[2] = strconv.ParseInt(fl[12], 10, 64)
			blocks, errs[3] = strconv.ParseInt(fl[13], 10, 64)
			free, errs[4] = strconv.ParseInt(fl[14], 10, 64)
			_, errs[5] = strconv.ParseUint(d.Mode, 8, 32)
			for _, err := range errs {
				if err != nil {
					return nil, fmt.Errorf("unreadable layout line %q", line)
				}
			}
			d.Size, d.Free = bsize*blocks, bsize*free
			// A device change from the parent is a mount point; findmnt
			// also tells a bind mount of the same filesystem.
			d.MountPoint = fl[15] != d.Dev
			if len(fl) >= 20 {
				d.Mount, d.FSType, d.Source = unescapeMount(fl[16]), fl[17], unescapeMount(fl[18])
				d.ReadOnly = hasOption(fl[19], "ro")
				d.MountPoint = d.MountPoint || d.Mount == real
			}
		}
		byRole[d.Role] = d
	}
	var ls []DirLayout
	for _, r := range roles {
		d, ok := byRole[r.name]
		if !ok {
			return nil, fmt.Errorf("the layout probe printed nothing for the %s dir %s", r.name, r.path)
		}
		d.Path = r.path
		ls = append(ls, d)
	}
	return ls, nil
}

// unescapeMount undoes findmnt -r's \xNN escapes (a space is \x20).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\x`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) && s[i+1] == 'x' {
			if n, err := strconv.ParseUint(s[i+2:i+4], 16, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func hasOption(opts, o string) bool {
	for _, x := range strings.Split(opts, ",") {
		if x == o {
			return true
		}
	}
	return false
}

// LayoutOf returns the layout read of one role's dir.
func (f *EtcdFacts) LayoutOf(role string) (DirLayout, bool) {
	for _, d := range f.Layout {
		if d.Role == role {
			return d, true
		}
	}
	return DirLayout{}, false
}

// WalInPlace is true when the unit's --wal-dir is a mount point or a symlink:
// the restore keeps the dir and moves its contents.
func (f *EtcdFacts) WalInPlace() bool {
	if f.Config.WalDir == "" {
		return false
	}
	d, ok := f.LayoutOf("wal")
	return ok && d.InPlace()
}

// MemberInPlace is true when <data-dir>/member is a mount point or a
// symlink: the restore keeps the dir and moves its contents.
func (f *EtcdFacts) MemberInPlace() bool {
	d, ok := f.LayoutOf("member")
	return ok && d.InPlace()
}

// Describe is the dir's layout on one line, for the plan.
func (d DirLayout) Describe() string {
	if !d.Exists {
		return d.Shape()
	}
	ro := ""
	if d.ReadOnly {
		ro = ", read-only"
	}
	return fmt.Sprintf("%s, %s free of %s%s", d.Shape(), bytesize.Human(d.Free), bytesize.Human(d.Size), ro)
}

// Shape is the dir's layout without its free space: what must not change.
func (d DirLayout) Shape() string {
	if !d.Exists {
		if d.Symlink {
			return fmt.Sprintf("%s %s: a symlink leading nowhere (%s)", d.Role, d.Path, orNone(d.Target))
		}
		return fmt.Sprintf("%s %s: not there yet", d.Role, d.Path)
	}
	var what []string
	if d.Symlink {
		what = append(what, "symlink to "+d.Target)
	}
	fs := fmt.Sprintf("%s filesystem on %s (dev %s)", orNone(d.FSType), orNone(d.Mount), d.Dev)
	if d.FSType == "" {
		fs = fmt.Sprintf("filesystem of dev %s", d.Dev)
	}
	if d.MountPoint {
		what = append(what, "mount point of its own "+fs)
	} else {
		what = append(what, "on the "+fs)
	}
	return fmt.Sprintf("%s %s: %s, %s:%s 0%s", d.Role, d.Path, strings.Join(what, ", "), d.Owner, d.Group, d.Mode)
}

func orNone(s string) string {
	if s == "" {
		return "?"
	}
	return s
}

// LayoutLines is the plan's account of the dirs' layout, one line each, with
// how the restore sets each one aside.
func LayoutLines(f *EtcdFacts) []string {
	var lines []string
	for _, d := range f.Layout {
		l := "layout: " + d.Describe()
		switch {
		case (d.Role == "wal" || d.Role == "member") && d.InPlace():
			l += "; stays where it is, its contents are set aside inside it (" + d.Path + "/.before-<token>)"
		case d.Role == "data" && d.InPlace():
			l += "; stays where it is (member/ is set aside inside it)"
		}
		lines = append(lines, l)
	}
	return lines
}

// LayoutProblems are the layouts the restore refuses, each naming the dir,
// what it is and what to do: found in preflight, before anything changes,
// so the swap never fails half-way on them.
func LayoutProblems(f *EtcdFacts) []string {
	if f.Layout == nil {
		return []string{"the layout of the data and WAL dirs could not be read (stat, readlink and findmnt on the host): without it the restore cannot tell a mount point it must not rename"}
	}
	var ps []string
	for _, d := range f.Layout {
		switch {
		case d.Symlink && !d.Exists && d.Role != "member/wal":
			ps = append(ps, fmt.Sprintf("%s dir %s is a symlink that leads nowhere (%s): mount or create its target first", d.Role, d.Path, orNone(d.Target)))
		case d.Role == "member/wal" && (d.Symlink || d.MountPoint):
			ps = append(ps, fmt.Sprintf("the WAL dir %s inside member/ is a %s: the restore sets member/ aside as a whole, so the restored WAL would land on member/'s disk. Point etcd at that disk with --wal-dir (and move the WAL there) before restoring", d.Path, inPlaceWhat(d)))
		case (d.Role == "data" || d.Role == "member" || d.Role == "wal") && d.Exists && d.ReadOnly:
			ps = append(ps, fmt.Sprintf("%s dir %s is on a read-only filesystem (%s on %s): remount it read-write first", d.Role, d.Path, d.FSType, d.Mount))
		}
	}
	return ps
}

func inPlaceWhat(d DirLayout) string {
	switch {
	case d.Symlink && d.MountPoint:
		return "symlink to " + d.Target + ", the mount point of a " + orNone(d.FSType) + " filesystem"
	case d.Symlink:
		return "symlink to " + d.Target
	default:
		return "mount point of a " + orNone(d.FSType) + " filesystem (" + orNone(d.Source) + ")"
	}
}

// KeepLayoutScript checks, right after the swap, that a dir is what
// preflight read. A dir the swap kept (InPlace, or one it never moves) must
// be on the same device with the same owner and mode, a symlink still
// leading to the same target. A dir the swap replaced by renaming (replaced)
// first gets the old dir's owner and mode. It exits non-zero naming what
// differs: the run then stops before etcd starts on a layout it changed.
func KeepLayoutScript(d DirLayout, replaced bool) string {
	if !d.Exists {
		return ""
	}
	q := transport.Quote
	var b strings.Builder
	format, want := "%d %u %g %a", fmt.Sprintf("%s %d %d %s", d.Dev, d.UID, d.GID, d.Mode)
	if replaced {
		fmt.Fprintf(&b, "chown -- %s %s && chmod -- %s %s || exit 1\n", q(fmt.Sprintf("%d:%d", d.UID, d.GID)), q(d.Path), q(d.Mode), q(d.Path))
		format, want = "%u %g %a", fmt.Sprintf("%d %d %s", d.UID, d.GID, d.Mode)
	}
	fmt.Fprintf(&b, "got=$(stat -L -c %s -- %s)\n", q(format), q(d.Path))
	fmt.Fprintf(&b, "if [ \"$got\" != %s ]; then printf 'the layout of %%s changed: was %%s, now %%s (%%s)\\n' %s %s \"$got\" %s >&2; exit 1; fi\n",
		q(want), q(d.Path), q(want), q(format))
	if d.Symlink {
		fmt.Fprintf(&b, "if [ ! -L %[1]s ] || [ \"$(readlink -f -- %[1]s)\" != %[2]s ]; then printf '%%s is no longer a symlink to %%s\\n' %[1]s %[2]s >&2; exit 1; fi\n", q(d.Path), q(d.Target))
	}
	fmt.Fprintf(&b, "printf 'layout kept: %%s\\n' %s\n", q(d.Shape()))
	return b.String()
}
