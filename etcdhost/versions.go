package etcdhost

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// A member must be restored by a tool of its own server's minor version: a
// data dir written by etcdctl 3.4 under an etcd 3.6 server crash-loops with
// "failed to update; member unknown". And all members must restore alike: a
// cluster where some revisions were bumped and some not disagrees with itself.

// serverVersionRE reads `etcd --version` ("etcd Version: 3.6.1").
var serverVersionRE = regexp.MustCompile(`(?i)etcd version:\s*v?(\d+\.\d+\.\d+\S*)`)

func serverVersion(out string) string {
	if m := serverVersionRE.FindStringSubmatch(out); m != nil {
		return m[1]
	}
	return ""
}

// majorMinor returns the major and minor numbers of "3.6.1" (or "v3.6.1").
func majorMinor(v string) (major, minor int, ok bool) {
	parts := strings.SplitN(strings.TrimPrefix(strings.TrimSpace(v), "v"), ".", 3)
	if len(parts) < 2 {
		return 0, 0, false
	}
	ma, err1 := strconv.Atoi(parts[0])
	mi, err2 := strconv.Atoi(parts[1])
	if err1 != nil || err2 != nil {
		return 0, 0, false
	}
	return ma, mi, true
}

// sameMinor is true when both versions are readable and share major.minor.
func sameMinor(a, b string) bool {
	am, an, ok1 := majorMinor(a)
	bm, bn, ok2 := majorMinor(b)
	return ok1 && ok2 && am == bm && an == bn
}

func versionAtLeast(v string, major, minor int) bool {
	ma, mi, ok := majorMinor(v)
	return ok && (ma > major || (ma == major && mi >= minor))
}

// restoreToolInfo names the tool RestoreTool picks: name, path, version, from PATH.
func (f *EtcdFacts) restoreToolInfo() (name, path, version string, fromPath bool) {
	if f.Etcdutl != "" {
		return "etcdutl", f.Etcdutl, f.EtcdutlVersion, f.EtcdutlFromPath
	}
	return "etcdctl", f.Etcdctl, f.EtcdctlVersion, f.EtcdctlFromPath
}

// restoreToolWhere is the restore tool's path, and PATH if it came from there.
func (f *EtcdFacts) RestoreToolWhere() string {
	_, path, _, fromPath := f.restoreToolInfo()
	return f.Where(path, fromPath)
}

// where says where a tool was found, for messages.
func (f *EtcdFacts) Where(path string, fromPath bool) string {
	if fromPath {
		return fmt.Sprintf("%s, found on PATH, not in bin_dir %s", path, f.BinDir)
	}
	return path
}

// versionProblems compares the unit's etcd server with the restore tool.
// Each problem says what to do.
func (f *EtcdFacts) VersionProblems() []string {
	binary := "etcd"
	if f.Config != nil {
		binary = f.Config.Binary
	}
	if f.ServerVersion == "" {
		out := f.ServerVersionOut
		if out == "" {
			out = "nothing"
		}
		return []string{fmt.Sprintf("cannot tell which etcd this member runs: `%s --version` (the binary of etcd.service's ExecStart) printed %q; without the server version the restore tool cannot be matched to it. Fix ExecStart or the binary, then plan again", binary, oneLineText(out))}
	}
	name, path, version, fromPath := f.restoreToolInfo()
	if path == "" {
		return nil // RestoreTool reports the missing tool
	}
	if version == "" {
		return []string{fmt.Sprintf("cannot read the version of the restore tool %s (`%s version` printed none); etcd server is %s. Install etcdutl %s into bin_dir %s, then plan again", path, name, f.ServerVersion, f.ServerVersion, f.BinDir)}
	}
	if !sameMinor(version, f.ServerVersion) {
		return []string{fmt.Sprintf("etcd server %s (%s) but the restore tool is %s %s (%s): a member restored by another minor version than its server crash-loops at start (\"failed to update; member unknown\"). Install etcdutl %s into bin_dir %s (or point bin_dir in the inventory at where it is), then plan again",
			f.ServerVersion, binary, name, version, f.Where(path, fromPath), f.ServerVersion, f.BinDir)}
	}
	return nil
}

// pathNotes are the warnings for tools taken from PATH instead of bin_dir.
func (f *EtcdFacts) PathNotes() []string {
	var notes []string
	if f.Etcdutl != "" && f.EtcdutlFromPath {
		notes = append(notes, fmt.Sprintf("warning: no etcdutl in bin_dir %s: using %s (etcdutl %s) from PATH", f.BinDir, f.Etcdutl, f.EtcdutlVersion))
	}
	if f.Etcdctl != "" && f.EtcdctlFromPath {
		notes = append(notes, fmt.Sprintf("warning: no etcdctl in bin_dir %s: using %s (etcdctl %s) from PATH", f.BinDir, f.Etcdctl, f.EtcdctlVersion))
	}
	return notes
}

// bumpMismatch refuses a restore where some members would get
// --bump-revision and others not. facts is in member order.
func BumpMismatch(hosts []string, facts []*EtcdFacts) error {
	var can, cannot []string
	var canTool string
	for i, f := range facts {
		if f.BumpRevision {
			can = append(can, fmt.Sprintf("%s (%s)", hosts[i], f.ToolLabel()))
			canTool = f.ToolLabel()
		} else {
			cannot = append(cannot, fmt.Sprintf("%s (%s)", hosts[i], f.ToolLabel()))
		}
	}
	if len(can) == 0 || len(cannot) == 0 {
		return nil
	}
	return fmt.Errorf("members would restore differently: %s can restore with --bump-revision, %s cannot; revisions would then differ between members. Install a restore tool with --bump-revision (like %s) into bin_dir on %s, or restore every member without it (--no-bump-revision)",
		strings.Join(can, ", "), strings.Join(cannot, ", "), canTool, hostList(cannot))
}

// hostList strips the "(tool)" of "host (tool)" entries.
func hostList(entries []string) string {
	hs := make([]string, len(entries))
	for i, e := range entries {
		hs[i], _, _ = strings.Cut(e, " (")
	}
	return strings.Join(hs, ", ")
}

func oneLineText(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 160 {
		s = s[:157] + "..."
	}
	return s
}
