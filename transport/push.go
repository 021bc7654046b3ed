package transport

import (
	"context"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"
	"time"
)

// One pass on the host: a push streams the file into the stdin of one remote
// command that writes it to remote.part and hashes the same bytes on their
// way to the disk (tee into sha256sum), then renames the .part into place
// only when the sum is the bastion's. SFTP followed by `sha256sum remote`
// costs a second round trip and a second read of the whole file on the host.

// Pushed is what a push did on one host.
type Pushed struct {
	// SHA256 is the sum the host computed over the bytes it wrote.
	SHA256 string
	// Size is the file's size; Wire what crossed the link (less when compressed).
	Size, Wire int64
	Duration   time.Duration
}

// DamagedError is a push whose bytes on the host do not hash to the
// bastion's sum: the host kept nothing under the final name.
type DamagedError struct {
	Host, Remote     string
	HostSum, Bastion string
}

func (e *DamagedError) Error() string {
	return fmt.Sprintf("%s arrived damaged on %s: sha256 %s on the host, %s on the bastion; nothing was put in its place, push again", e.Remote, e.Host, e.HostSum, e.Bastion)
}

// Push copies local to remote on c as root, checked against wantSHA256 (64
// hex digits) in the same pass as the write (see pushCommand). On an SSH
// connection it is one command fed through stdin; on another Conn it falls
// back to Upload then RemoteSha256. progress gets the bytes sent so far.
func Push(ctx context.Context, c Conn, local, remote string, mode os.FileMode, wantSHA256 string, progress func(int64)) (Pushed, error) {
	t0 := time.Now()
	if len(wantSHA256) != 64 || strings.Trim(strings.ToLower(wantSHA256), "0123456789abcdef") != "" {
		return Pushed{}, fmt.Errorf("push %s: a sha256 (64 hex digits) to check on the host is required", local)
	}
	want := strings.ToLower(wantSHA256)
	st, err := os.Stat(local)
	if err != nil {
		return Pushed{}, fmt.Errorf("push: %w", err)
	}
	if !st.Mode().IsRegular() {
		return Pushed{}, fmt.Errorf("push: %s is not a regular file", local)
	}
	sc, ok := c.(*sshConn)
	if !ok {
		if err := c.Upload(ctx, local, remote, mode, progress); err != nil {
			return Pushed{Size: st.Size(), Duration: time.Since(t0)}, err
		}
		sum, err := RemoteSha256(ctx, c, remote)
		res := Pushed{SHA256: sum, Size: st.Size(), Wire: st.Size(), Duration: time.Since(t0)}
		if err != nil {
			return res, fmt.Errorf("checking %s after upload: %w", remote, err)
		}
		if sum != want {
			return res, &DamagedError{Host: c.Host().Name, Remote: remote, HostSum: sum, Bastion: want}
		}
		return res, nil
	}
	return sc.push(ctx, local, remote, mode, want, progress)
}

// pushBuffer is how much of the file one write to the SSH channel carries.
const pushBuffer = 256 << 10

// pushCutWait is how long a push whose stream broke waits for the host's
// side to say why before it cuts the session.
const pushCutWait = 5 * time.Second

func (c *sshConn) push(ctx context.Context, local, remote string, mode os.FileMode, want string, progress func(int64)) (Pushed, error) {
	t0 := time.Now()
	src, err := os.Open(local)
	if err != nil {
		return Pushed{}, fmt.Errorf("push: %w", err)
	}
	defer src.Close()
	st, err := src.Stat()
	if err != nil {
		return Pushed{}, fmt.Errorf("push: %w", err)
	}
	size := st.Size()
	res := Pushed{Size: size}
	what := fmt.Sprintf("push %s to %s", local, remote)
	sink, err := c.startStdin(ctx, c.asRoot(pushCommand(remote, mode, size, want, false)))
	if err != nil {
		return res, fmt.Errorf("%s: %w", what, err)
	}
	pr := &progressReader{f: src, size: size, progress: progress}
	n, copyErr := io.CopyBuffer(sink, onlyReader{pr}, make([]byte, pushBuffer))
	if copyErr == nil && n != size {
		copyErr = fmt.Errorf("read %d of %d bytes (did the file change?)", n, size)
	}
	var out Result
	if copyErr != nil {
		// The host's side may have stopped first (a full disk): closing its
		// stdin lets it say why, and a short file never gets the final name
		// (the size check). A host that does not answer is cut off.
		var ferr error
		done := make(chan struct{})
		go func() { out, ferr = sink.finish(); close(done) }()
		select {
		case <-done:
		case <-time.After(pushCutWait):
			sink.abort()
			<-done
		}
		res.Wire, res.Duration = sink.wire.Load(), time.Since(t0)
		if ctx.Err() != nil {
			return res, ctx.Err()
		}
		if ferr == nil && out.ExitCode != 0 && len(out.Stderr) > 0 {
			return res, fmt.Errorf("%s on %s: the host stopped after %s of %s: %s", what, c.host.Name, Bytes(n), Bytes(size), firstLine(out.Stderr))
		}
		return res, fmt.Errorf("%s: the stream broke after %s of %s: %w", what, Bytes(n), Bytes(size), copyErr)
	}
	out, err = sink.finish()
	res.Wire, res.Duration = sink.wire.Load(), time.Since(t0)
	if ctx.Err() != nil {
		return res, ctx.Err()
	}
	if err != nil {
		return res, fmt.Errorf("%s: the host's side ended without a status after %s of %s were sent (connection lost? a .part may be left, never the final name): %w", what, Bytes(n), Bytes(size), err)
	}
	sum, err := c.pushOutcome(out, remote, want, what)
	res.SHA256 = sum
	return res, err
}

// onlyReader hides ReadFrom/WriterTo so io.CopyBuffer uses our buffer size.
type onlyReader struct{ io.Reader }

// asRoot runs line as root: itself for a root login, else through `sudo -n`
// (a push writes as root whatever become_user says, as Upload does).
func (c *sshConn) asRoot(line string) string {
	if c.route.User.Value == "root" {
		return line
	}
	return "sudo -n -- sh -c " + Quote(line)
}

var hostSumRE = regexp.MustCompile(`sha256 ([0-9a-f]{64})`)

// pushOutcome reads what pushCommand said: the host's sum when it matched,
// else an error naming the host and, for a wrong sum, both sums.
func (c *sshConn) pushOutcome(out Result, remote, want, what string) (string, error) {
	if out.ExitCode == 1 && c.route.User.Value != "root" && strings.HasPrefix(string(out.Stderr), "sudo:") {
		return "", fmt.Errorf("%s: %w", what, ErrSudoPassword)
	}
	m := hostSumRE.FindStringSubmatch(string(out.Stdout))
	switch {
	case out.ExitCode == pushExitDamaged && m != nil:
		return m[1], &DamagedError{Host: c.host.Name, Remote: remote, HostSum: m[1], Bastion: want}
	case out.ExitCode != 0:
		return "", fmt.Errorf("%s on %s: exit status %d: %s", what, c.host.Name, out.ExitCode, firstLine(out.Stderr))
	case m == nil || m[1] != want:
		return "", fmt.Errorf("%s on %s: the host's check said %q", what, c.host.Name, strings.TrimSpace(string(out.Stdout)))
	}
	return m[1], nil
}

// pushExitDamaged is pushCommand's exit status for a complete file whose sum
// is not the one wanted.
const pushExitDamaged = 3

// pushCommand is the host's side of a push: stdin (gunzipped when gz, a
// sequence of gzip members read as one stream) is written to remote.part,
// created 0600 before any byte lands (an older .part is removed first), and
// hashed in the same pass. Only when the whole stream was written, the file
// has size bytes and the sum is want is the mode set and the .part renamed
// into place; it prints "sha256 <sum>" (exit 0, or pushExitDamaged for a
// wrong sum, the sum still printed). On any failure, a cut stream or a
// signal, the .part is removed.
//
// It runs pushPython when the host has python3 (every host Ansible manages
// has one): one process that inflates with zlib and hashes with OpenSSL,
// several times less CPU than gzip(1) and coreutils' sha256sum, which matters
// when the same cores also decompress for other hosts or run etcd; else
// pushShell, the same contract with tee, gzip and sha256sum.
//
// It runs at a lower CPU priority (nice 10, when renice is there): a push
// may run beside a live etcd, or beside the steps that stop it, which wait
// on a few milliseconds of CPU each and should not wait on the inflating.
func pushCommand(remote string, mode os.FileMode, size int64, want string, gz bool) string {
	return "renice -n 10 -p $$ >/dev/null 2>&1 || :\nif command -v python3 >/dev/null 2>&1; then\n" + pushPython(remote, mode, size, want, gz) + "\nfi\n" + pushShell(remote, mode, size, want, gz)
}

// pushPythonScript is pushPython's program; its arguments are part, final,
// mode (octal), size, want and "gz" or "raw".
const pushPythonScript = `import hashlib, os, signal, sys, zlib
part, final, mode, size, want, gz = sys.argv[1], sys.argv[2], int(sys.argv[3], 8), int(sys.argv[4]), sys.argv[5], sys.argv[6] == "gz"
def bail(sig, frame):
    raise SystemExit(128 + sig)
for s in (signal.SIGHUP, signal.SIGINT, signal.SIGTERM):
    signal.signal(s, bail)
os.umask(0o077)
def fail(code, msg):
    sys.stderr.write(msg + "\n")
    raise SystemExit(code)
fd, kept = -1, False
try:
    try:
        os.unlink(part)
    except FileNotFoundError:
        pass
    fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    h, n = hashlib.sha256(), 0
    def put(b):
        global n
        h.update(b)
        n += len(b)
        v = memoryview(b)
        while v:
            v = v[os.write(fd, v):]
    d = zlib.decompressobj(31) if gz else None
    while True:
        b = os.read(0, 1 << 20)
        if not b:
            break
        if d is None:
            put(b)
            continue
        while b:
            if d.eof:
                d = zlib.decompressobj(31)
            put(d.decompress(b))
            b = d.unused_data if d.eof else b""
    if d is not None and not d.eof:
        fail(4, "the stream was cut: the gzip data ends early")
    if n != size:
        fail(5, "%s has %d bytes, the bastion sent %d" % (part, n, size))
    sum = h.hexdigest()
    if sum != want:
        print("sha256 " + sum, flush=True)
        fail(3, "the file written has sha256 %s, the bastion's is %s" % (sum, want))
    os.fchmod(fd, mode)
    os.close(fd)
    fd = -1
    os.rename(part, final)
    kept = True
    print("sha256 " + sum)
except zlib.error as e:
    fail(4, "the stream is not valid gzip: %s" % e)
except OSError as e:
    fail(4, "%s could not be written: %s" % (part, e))
finally:
    if fd >= 0:
        os.close(fd)
    if not kept:
        try:
            os.unlink(part)
        except OSError:
            pass
`

// pushPython execs python3 with pushPythonScript (see pushCommand).
func pushPython(remote string, mode os.FileMode, size int64, want string, gz bool) string {
	kind := "raw"
	if gz {
		kind = "gz"
	}
	return fmt.Sprintf("exec python3 -c %s %s %s %04o %d %s %s", Quote(pushPythonScript), Quote(remote+".part"), Quote(remote), mode.Perm(), size, Quote(want), kind)
}

// pushShell is pushCommand for a host without python3: tee writes the .part
// and feeds sha256sum in the same pass.
func pushShell(remote string, mode os.FileMode, size int64, want string, gz bool) string {
	in := ""
	if gz {
		// gzip's own status: a truncated or corrupt stream fails here.
		in = `{ gzip -dc && : > "$p.in"; } | `
	}
	ok := `: > "$p.in"; `
	if gz {
		ok = ""
	}
	return fmt.Sprintf(`set -e
umask 077
p=%[1]s
trap 'rm -f -- "$p" "$p.in" "$p.out"' EXIT
trap 'exit 129' HUP INT TERM PIPE
rm -f -- "$p" "$p.in" "$p.out"
%[7]ssum=$(%[6]s{ tee -- "$p" && : > "$p.out"; } | sha256sum | cut -d ' ' -f 1)
if [ ! -e "$p.in" ] || [ ! -e "$p.out" ]; then echo "the stream was cut or $p could not be written (disk full?)" >&2; exit 4; fi
n=$(wc -c < "$p")
if [ $n -ne %[4]d ]; then echo "$p has $n bytes, the bastion sent %[4]d" >&2; exit 5; fi
if [ "$sum" != %[5]s ]; then echo "sha256 $sum"; echo "the file written has sha256 $sum, the bastion's is %[5]s" >&2; exit %[8]d; fi
chmod %04[3]o "$p"
mv -f -- "$p" %[2]s
echo "sha256 $sum"`, Quote(remote+".part"), Quote(remote), mode.Perm(), size, want, in, ok, pushExitDamaged)
}

// HostSinkCommand is the host's side of a push as Push (gz false) or
// UploadGzip (gz true) runs it: pushPython when python is true, else the
// shell form. For benchmarks that time the host's side alone.
func HostSinkCommand(remote string, mode os.FileMode, size int64, want string, gz, python bool) string {
	if python {
		return pushPython(remote, mode, size, want, gz)
	}
	return pushShell(remote, mode, size, want, gz)
}
