package localetcd

import (
	"context"
	"errors"
	"net"
	"os/exec"
	"strconv"
	"testing"
	"time"
)

func etcdBin(t *testing.T) string {
	p, err := exec.LookPath("etcd")
	if err != nil {
		t.Skip("no etcd on this machine (scripts/deps.sh installs it)")
	}
	return p
}

// A real etcd starts healthy and stops; a client port someone else holds
// is ErrPortTaken, so callers pick new ports.
func TestStartStopAndPortTaken(t *testing.T) {
	bin := etcdBin(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ports, err := Ports(2)
	if err != nil {
		t.Fatal(err)
	}
	e, err := Start(ctx, Options{Bin: bin, Name: "t", DataDir: t.TempDir() + "/data", ClientPort: ports[0], PeerPort: ports[1]})
	if err != nil {
		t.Fatal(err)
	}
	e.Stop()

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	held := l.Addr().(*net.TCPAddr).Port
	_, err = Start(ctx, Options{Bin: bin, Name: "t", DataDir: t.TempDir() + "/data", ClientPort: held, PeerPort: ports[1]})
	if !errors.Is(err, ErrPortTaken) {
		t.Fatalf("client port %s held: %v, want ErrPortTaken", strconv.Itoa(held), err)
	}
}
