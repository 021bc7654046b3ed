// Package s3test runs a real S3-compatible server on 127.0.0.1 for tests
// and benchmarks: versitygw's posix gateway, built from the Go module proxy
// in the module lab/s3build (its own go.mod and go.sum, so the server's
// dependencies stay out of ezrestore's) and cached under
// /var/cache/ezrestore/s3. Buckets are directories of the server's root, so
// a test can damage a stored object by writing the file.
package s3test

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"github.com/ezrestore/ezrestore/internal/filelock"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// CacheDir holds the built servers (the lab's cache).
var CacheDir = "/var/cache/ezrestore/s3"

const (
	buildModule = "lab/s3build"
	serverPkg   = "github.com/versity/versitygw/cmd/versitygw"
	serverMod   = "github.com/versity/versitygw"
)

// Binary returns the path of the versitygw binary, building it first (a
// few minutes on a busy machine) when the cache has none for the pinned
// version. Concurrent callers wait on a file lock and build once.
func Binary(ctx context.Context, log io.Writer) (string, error) {
	src, err := buildDir()
	if err != nil {
		return "", err
	}
	gomod, err := os.ReadFile(filepath.Join(src, "go.mod"))
	if err != nil {
		return "", err
	}
	gosum, err := os.ReadFile(filepath.Join(src, "go.sum"))
	if err != nil {
		return "", err
	}
	version := requiredVersion(gomod, serverMod)
	if version == "" {
		return "", fmt.Errorf("%s/go.mod does not require %s", src, serverMod)
	}
	h := sha256.Sum256(append(gomod, gosum...))
	dir := filepath.Join(CacheDir, "versitygw-"+version+"-"+hex.EncodeToString(h[:4]))
	bin := filepath.Join(dir, "versitygw")
	if filelock.IsExec(bin) {
		return bin, nil
	}
	if err := os.MkdirAll(CacheDir, 0o755); err != nil {
		return "", err
	}
	unlock, err := filelock.Lock(ctx, dir+".lock")
	if err != nil {
		return "", err
	}
	defer unlock()
	if filelock.IsExec(bin) {
		return bin, nil
	}
	if log == nil {
		log = io.Discard
	}
	fmt.Fprintf(log, "s3test: building versitygw %s from the Go module proxy (a few minutes, once)\n", version)
	start := time.Now()
	tmp := fmt.Sprintf("%s.tmp-%d", dir, os.Getpid())
	defer os.RemoveAll(tmp)
	goBin := "go"
	if _, err := exec.LookPath(goBin); err != nil {
		goBin = "/usr/local/go/bin/go"
	}
	logPath := dir + ".build.log"
	lf, err := os.Create(logPath)
	if err != nil {
		return "", err
	}
	defer lf.Close()
	cmd := exec.CommandContext(ctx, goBin, "build", "-trimpath", "-ldflags=-s -w", "-o", filepath.Join(tmp, "versitygw"), serverPkg)
	cmd.Dir = src
	// -mod=readonly: the committed go.sum is the only source of truth.
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=readonly", "GOTOOLCHAIN=local", "CGO_ENABLED=0", "GOWORK=off")
	cmd.Stdout, cmd.Stderr = lf, lf
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("building versitygw in %s: %w (log: %s)", src, err, logPath)
	}
	_ = os.RemoveAll(dir)
	if err := os.Rename(tmp, dir); err != nil {
		return "", err
	}
	fmt.Fprintf(log, "s3test: built versitygw in %s\n", time.Since(start).Round(time.Second))
	return bin, nil
}

// buildDir finds lab/s3build in the source tree the tests run from.
func buildDir() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for d := wd; ; d = filepath.Dir(d) {
		data, err := os.ReadFile(filepath.Join(d, "go.mod"))
		if err == nil && modulePath(data) == "github.com/ezrestore/ezrestore" {
			return filepath.Join(d, buildModule), nil
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("s3test: no ezrestore source tree above %s (lab/s3build builds the S3 server)", wd)
		}
	}
}

func modulePath(gomod []byte) string {
	sc := bufio.NewScanner(strings.NewReader(string(gomod)))
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) == 2 && f[0] == "module" {
			return f[1]
		}
	}
	return ""
}

func requiredVersion(gomod []byte, mod string) string {
	sc := bufio.NewScanner(strings.NewReader(string(gomod)))
	for sc.Scan() {
		f := strings.Fields(strings.TrimPrefix(strings.TrimSpace(sc.Text()), "require "))
		if len(f) >= 2 && f[0] == mod {
			return f[1]
		}
	}
	return ""
}

// Server is one running versitygw.
type Server struct {
	Endpoint  string // http://127.0.0.1:PORT
	AccessKey string
	SecretKey string
	Root      string // bucket dirs live here
	Region    string
	cmd       *exec.Cmd
	done      chan struct{}
	waitErr   error
	stopOnce  sync.Once
}

// Start runs versitygw on a free loopback port with its buckets under root
// (created 0700) and fresh random credentials. Its output goes to log.
func Start(ctx context.Context, root string, log io.Writer) (*Server, error) {
	bin, err := Binary(ctx, log)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(root, 0o700); err != nil {
		return nil, err
	}
	if log == nil {
		log = io.Discard
	}
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ { // the port may be taken between probe and bind
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		s := &Server{
			Endpoint:  "http://127.0.0.1:" + strconv.Itoa(port),
			AccessKey: "EZR" + randHex(8), SecretKey: randHex(20), Root: root, Region: "us-east-1",
			done: make(chan struct{}),
		}
		s.cmd = exec.Command(bin, "--access", s.AccessKey, "--secret", s.SecretKey,
			"--port", "127.0.0.1:"+strconv.Itoa(port), "--region", s.Region, "--quiet", "posix", root)
		s.cmd.Stdout, s.cmd.Stderr = log, log
		s.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		if err := s.cmd.Start(); err != nil {
			return nil, fmt.Errorf("start %s: %w", bin, err)
		}
		go func() { s.waitErr = s.cmd.Wait(); close(s.done) }()
		if lastErr = s.waitReady(ctx, 20*time.Second); lastErr == nil {
			return s, nil
		}
		s.Stop()
	}
	return nil, lastErr
}

func randHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return strings.ToUpper(hex.EncodeToString(b))[:n]
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func (s *Server) waitReady(ctx context.Context, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	c := &http.Client{Timeout: 2 * time.Second}
	for {
		select {
		case <-s.done:
			return fmt.Errorf("versitygw exited before it served: %v", s.waitErr)
		case <-ctx.Done():
			return ctx.Err()
		default:
		}
		// Any HTTP answer (403 for an unsigned request) means it serves.
		if resp, err := c.Get(s.Endpoint + "/"); err == nil {
			resp.Body.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("versitygw at %s not serving after %s", s.Endpoint, limit)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Client is an S3 client of the server with its root credentials.
func (s *Server) Client() *s3.Client {
	return s3.New(s3.Options{
		Region:       s.Region,
		BaseEndpoint: aws.String(s.Endpoint),
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider(s.AccessKey, s.SecretKey, ""),
	})
}

// CreateBucket makes a bucket.
func (s *Server) CreateBucket(ctx context.Context, name string) error {
	_, err := s.Client().CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(name)})
	if err != nil {
		return fmt.Errorf("create bucket %s at %s: %w", name, s.Endpoint, err)
	}
	return nil
}

// Env is the AWS environment that points a client (or a child ezrestore)
// at this server.
func (s *Server) Env() map[string]string {
	return map[string]string{
		"AWS_ACCESS_KEY_ID":     s.AccessKey,
		"AWS_SECRET_ACCESS_KEY": s.SecretKey,
		"AWS_REGION":            s.Region,
		"AWS_ENDPOINT_URL":      s.Endpoint,
	}
}

// ObjectPath is the file that holds key of bucket.
func (s *Server) ObjectPath(bucket, key string) string {
	return filepath.Join(s.Root, bucket, filepath.FromSlash(key))
}

// Stop ends the server (SIGTERM, SIGKILL after 5 s) and waits for it.
func (s *Server) Stop() {
	s.stopOnce.Do(func() {
		if s.cmd == nil || s.cmd.Process == nil {
			return
		}
		_ = s.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-s.done:
		case <-time.After(5 * time.Second):
			_ = s.cmd.Process.Kill()
			<-s.done
		}
	})
}

// CPUTime is the CPU time (user and system) the server has used so far,
// from /proc: benchmarks split a transfer's cost between client and store.
func (s *Server) CPUTime() (time.Duration, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", s.cmd.Process.Pid))
	if err != nil {
		return 0, err
	}
	// Fields after the command name, which is in parentheses and may hold spaces.
	i := strings.LastIndexByte(string(data), ')')
	f := strings.Fields(string(data[i+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("short /proc stat: %q", data)
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	const ticks = 100 // USER_HZ on Linux
	return time.Duration(ut+st) * time.Second / ticks, nil
}
