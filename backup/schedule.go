package backup

// Recurring backups: a systemd service that runs one `ezrestore backup` and
// a timer that starts it, on the bastion.

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

// UnitDir is where the units are written.
const UnitDir = "/etc/systemd/system"

// Schedule is a recurring backup of one cluster.
type Schedule struct {
	Cluster string
	// Every is a period (30m, 1h, a Go or systemd duration: the timer runs
	// the backup that long after the last one started, and once after
	// boot) or a systemd calendar expression (hourly, daily, *-*-* 02:00:
	// wall-clock times, caught up after downtime).
	Every string
	// Command is the backup's command line, the binary first (absolute).
	Command []string
	// User runs the backup (its HOME holds ~/.aws); "" : root.
	User string
	// EnvFile is read by the service when it exists: AWS_* settings
	// (credentials) that should not be in a world-readable unit.
	EnvFile string
	// Dir is where the units go ("" : UnitDir).
	Dir string
}

var unitNameRE = regexp.MustCompile(`^[A-Za-z0-9_.-]+$`)

// UnitName is the units' name without suffix: ezrestore-backup-<cluster>.
func UnitName(cluster string) (string, error) {
	if !unitNameRE.MatchString(cluster) {
		return "", fmt.Errorf("cluster %q: a scheduled cluster's name is letters, digits, '.', '_' and '-' (it names the systemd units)", cluster)
	}
	return "ezrestore-backup-" + cluster, nil
}

// Paths are the service and timer files.
func (s Schedule) Paths() (service, timer string, err error) {
	name, err := UnitName(s.Cluster)
	if err != nil {
		return "", "", err
	}
	dir := s.Dir
	if dir == "" {
		dir = UnitDir
	}
	return filepath.Join(dir, name+".service"), filepath.Join(dir, name+".timer"), nil
}

var calendarShorthands = map[string]bool{"minutely": true, "hourly": true, "daily": true, "weekly": true,
	"monthly": true, "yearly": true, "annually": true, "quarterly": true, "semiannually": true}

// timerLines turns Every into the [Timer] settings.
func (s Schedule) timerLines() ([]string, string, error) {
	e := strings.TrimSpace(s.Every)
	if e == "" {
		return nil, "", errors.New("--every is required: a period like 30m or 6h, or a systemd calendar expression like daily or '*-*-* 02:00'")
	}
	if d, err := time.ParseDuration(e); err == nil {
		if d < time.Minute {
			return nil, "", fmt.Errorf("--every %s: at least 1m between backups", e)
		}
		sec := int64(d / time.Second)
		return []string{
			fmt.Sprintf("OnBootSec=%ds", sec),
			fmt.Sprintf("OnUnitActiveSec=%ds", sec),
			"AccuracySec=1s",
		}, "every " + e, nil
	}
	if strings.ContainsAny(e, "\n%") {
		return nil, "", fmt.Errorf("--every %q: not a period (30m) nor a calendar expression", e)
	}
	if calendarShorthands[e] || strings.ContainsAny(e, "*:-") {
		if err := checkCalendar(e); err != nil {
			return nil, "", err
		}
		return []string{"OnCalendar=" + e, "Persistent=true", "AccuracySec=1s"}, "at " + e, nil
	}
	return nil, "", fmt.Errorf("--every %q: not a period like 30m or 6h, nor a calendar expression like daily or '*-*-* 02:00'", e)
}

// checkCalendar asks systemd-analyze, when there is one, whether e parses.
func checkCalendar(e string) error {
	p, err := exec.LookPath("systemd-analyze")
	if err != nil {
		return nil
	}
	out, err := exec.Command(p, "calendar", e).CombinedOutput()
	if err != nil {
		return fmt.Errorf("--every %q: systemd does not read it as a calendar expression: %s", e, strings.TrimSpace(string(out)))
	}
	return nil
}

// Units returns the service and the timer.
func (s Schedule) Units() (service, timer string, err error) {
	name, err := UnitName(s.Cluster)
	if err != nil {
		return "", "", err
	}
	if len(s.Command) == 0 || !filepath.IsAbs(s.Command[0]) {
		return "", "", errors.New("the scheduled command needs the binary's absolute path")
	}
	tl, when, err := s.timerLines()
	if err != nil {
		return "", "", err
	}
	var args []string
	for _, a := range s.Command {
		args = append(args, SystemdQuote(a))
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# Written by `ezrestore backup schedule`; remove with `ezrestore backup schedule %s --remove`.\n", s.Cluster)
	fmt.Fprintf(&b, "[Unit]\nDescription=ezrestore backup of cluster %s (%s)\n", s.Cluster, when)
	b.WriteString("Wants=network-online.target\nAfter=network-online.target\n\n")
	b.WriteString("[Service]\n")
	b.WriteString("# One backup under the cluster's run lock; a failure exits non-zero, so\n")
	b.WriteString("# `systemctl --failed` and the journal show it.\n")
	b.WriteString("Type=oneshot\n")
	if s.User != "" && s.User != "root" {
		fmt.Fprintf(&b, "User=%s\n", s.User)
	}
	if s.EnvFile != "" {
		b.WriteString("# AWS_* settings (credentials, endpoint) that must not be in this file; '-': optional.\n")
		fmt.Fprintf(&b, "EnvironmentFile=-%s\n", s.EnvFile)
	}
	b.WriteString("UMask=0077\nNice=10\nIOSchedulingClass=best-effort\nIOSchedulingPriority=7\n")
	fmt.Fprintf(&b, "ExecStart=%s\n", strings.Join(args, " "))
	service = b.String()

	b.Reset()
	fmt.Fprintf(&b, "# Written by `ezrestore backup schedule`; remove with `ezrestore backup schedule %s --remove`.\n", s.Cluster)
	fmt.Fprintf(&b, "[Unit]\nDescription=ezrestore backup of cluster %s, %s\n\n[Timer]\n", s.Cluster, when)
	for _, l := range tl {
		b.WriteString(l + "\n")
	}
	fmt.Fprintf(&b, "Unit=%s.service\n\n[Install]\nWantedBy=timers.target\n", name)
	return service, b.String(), nil
}

// SystemdQuote quotes one argument for ExecStart: systemd splits on
// spaces, reads C-style escapes inside double quotes, and expands % and $.
func SystemdQuote(a string) string {
	a = strings.ReplaceAll(a, "%", "%%")
	a = strings.ReplaceAll(a, "$", "$$")
	if a != "" && !strings.ContainsAny(a, " \t\"'\\;") {
		return a
	}
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\t", `\t`, "\n", `\n`)
	return `"` + r.Replace(a) + `"`
}

// Systemctl runs systemctl; tests and the schedule share it.
var Systemctl = func(ctx context.Context, args ...string) error {
	out, err := exec.CommandContext(ctx, "systemctl", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("systemctl %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// Install writes the units (0644: they hold no secret), reloads systemd and
// enables and starts the timer.
func (s Schedule) Install(ctx context.Context) (service, timer string, err error) {
	svc, tmr, err := s.Units()
	if err != nil {
		return "", "", err
	}
	service, timer, _ = s.Paths()
	if err := writeUnit(service, svc); err != nil {
		return "", "", err
	}
	if err := writeUnit(timer, tmr); err != nil {
		return "", "", err
	}
	if err := Systemctl(ctx, "daemon-reload"); err != nil {
		return service, timer, err
	}
	if err := Systemctl(ctx, "enable", "--now", filepath.Base(timer)); err != nil {
		return service, timer, err
	}
	// A changed schedule takes effect now, not after the old period.
	return service, timer, Systemctl(ctx, "restart", filepath.Base(timer))
}

func writeUnit(path, content string) error {
	tmp := path + ".ezrestore-tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}

// Remove stops and disables the timer, stops a running backup's service,
// removes both files and reloads systemd. Units already gone are not an
// error; removed says which files were there.
func (s Schedule) Remove(ctx context.Context) (removed []string, err error) {
	service, timer, err := s.Paths()
	if err != nil {
		return nil, err
	}
	present := false
	for _, p := range []string{service, timer} {
		if _, err := os.Stat(p); err == nil {
			present = true
		}
	}
	if present {
		if err := Systemctl(ctx, "disable", "--now", filepath.Base(timer)); err != nil {
			return nil, err
		}
		if err := Systemctl(ctx, "stop", filepath.Base(service)); err != nil {
			return nil, err
		}
	}
	for _, p := range []string{timer, service} {
		err := os.Remove(p)
		if err == nil {
			removed = append(removed, p)
		} else if !errors.Is(err, fs.ErrNotExist) {
			return removed, err
		}
	}
	if present {
		return removed, Systemctl(ctx, "daemon-reload")
	}
	return removed, nil
}
