package steps

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/ezrestore/ezrestore/inventory"
	"github.com/ezrestore/ezrestore/kubeapi"
	"github.com/ezrestore/ezrestore/orchestrator"
	"github.com/ezrestore/ezrestore/transport"
)

// APISkipped says why the restore does not check the API, or "".
func (r *Restore) APISkipped() string {
	switch {
	case r.NoAPICheck:
		return "--no-api-check given"
	case r.Kube == nil && r.KubeMissing != "":
		return r.KubeMissing
	case r.Kube == nil:
		return "no kubeconfig to reach the apiservers"
	}
	return ""
}

// KubeReady waits until every master's kube-apiserver answers /readyz "ok",
// over TLS verified against the cluster CA, as the kubeconfig's user. A
// kube-apiserver unit that failed or keeps restarting stops the wait at once;
// either way the failure names the host and shows its last log lines.
type KubeReady struct{ r *Restore }

const opKubeReady = "kube-ready"

// ReadyPoll is the pause between two /readyz rounds.
const ReadyPoll = 500 * time.Millisecond

const apiserverUnit = "kube-apiserver.service"

func (k *KubeReady) timeout() time.Duration { return healthTimeout(k.r.HealthTimeout) }

func (k *KubeReady) Plan(ctx context.Context, env *orchestrator.Env, step *orchestrator.Step, hosts []*inventory.Host) (*orchestrator.StepPlan, error) {
	k.r.Masters = kubeapi.APIServers(hosts)
	sp := &orchestrator.StepPlan{ReadOnly: true, Parallel: true}
	if why := k.r.APISkipped(); why != "" {
		sp.Notes = append(sp.Notes, "skipped: "+why)
		return sp, nil
	}
	sp.Notes = append(sp.Notes, fmt.Sprintf("TLS verified against the CA of %s, as its user %s", k.r.Kube.Kubeconfig, k.r.Kube.User))
	for _, m := range k.r.Masters {
		sp.Tasks = append(sp.Tasks, &orchestrator.Task{Host: m.Host, Ops: []*orchestrator.Op{{
			Kind:    opKubeReady,
			Desc:    fmt.Sprintf("GET %s/readyz every %v up to %v until it answers ok; stop early if %s fails", m.URL, ReadyPoll, k.timeout(), apiserverUnit),
			Payload: kubeReadyPayload{URL: m.URL},
		}}})
	}
	return sp, nil
}

// kubeReadyPayload is the apiserver a readiness op asks.
type kubeReadyPayload struct {
	URL string `json:"url"`
}

func (k *KubeReady) Exec(ctx context.Context, env *orchestrator.Env, t *orchestrator.Task, op *orchestrator.Op, conn transport.Conn) (orchestrator.OpResult, error) {
	c, err := k.r.Kube.Client()
	if err != nil {
		return orchestrator.OpResult{}, err
	}
	pl, err := orchestrator.PayloadOf[kubeReadyPayload](op)
	if err != nil {
		return orchestrator.OpResult{}, err
	}
	t0 := time.Now()
	deadline := t0.Add(k.timeout())
	url := pl.URL + "/readyz"
	hosts := []string{t.Host}
	baseline := readUnits(ctx, env, hosts, apiserverUnit)
	nextUnitCheck := t0.Add(time.Second)
	last := ""
	for {
		code, body, err := kubeapi.Get(ctx, c, url)
		if err == nil && code == http.StatusOK && strings.TrimSpace(string(body)) == "ok" {
			return orchestrator.OpResult{Duration: time.Since(t0), Message: fmt.Sprintf("%s: ok after %.2fs", url, time.Since(t0).Seconds())}, nil
		}
		if err != nil {
			last = err.Error()
		} else {
			last = fmt.Sprintf("HTTP %d: %s", code, k.failedChecks(ctx, c, pl.URL, body))
		}
		if time.Now().After(nextUnitCheck) {
			nextUnitCheck = time.Now().Add(time.Second)
			if stuck := hopeless(apiserverUnit, baseline, readUnits(ctx, env, hosts, apiserverUnit)); stuck[t.Host] != "" {
				return orchestrator.OpResult{Duration: time.Since(t0)},
					apiserverFailure(ctx, conn, fmt.Sprintf("kube-apiserver cannot start on %s: %s; waiting longer would not help", t.Host, stuck[t.Host]))
			}
		}
		if time.Now().After(deadline) {
			return orchestrator.OpResult{Duration: time.Since(t0)},
				apiserverFailure(ctx, conn, fmt.Sprintf("kube-apiserver on %s is not ready after %v: %s: %s", t.Host, k.timeout(), url, last))
		}
		select {
		case <-ctx.Done():
			return orchestrator.OpResult{Duration: time.Since(t0)}, fmt.Errorf("interrupted while waiting for %s: %s", url, last)
		case <-time.After(ReadyPoll):
		}
	}
}

// failedChecks names the failing /readyz checks (from ?verbose), or the body.
func (k *KubeReady) failedChecks(ctx context.Context, c *http.Client, base string, body []byte) string {
	if _, vbody, err := kubeapi.Get(ctx, c, base+"/readyz?verbose"); err == nil {
		var failed []string
		for _, l := range strings.Split(string(vbody), "\n") {
			if strings.HasPrefix(l, "[-]") {
				failed = append(failed, strings.TrimSpace(l))
			}
		}
		if len(failed) > 0 {
			return strings.Join(failed, "; ")
		}
	}
	return firstLine(body)
}

// apiserverFailure adds the host's last kube-apiserver log lines to why.
func apiserverFailure(ctx context.Context, conn transport.Conn, why string) error {
	var b strings.Builder
	b.WriteString(why)
	if conn != nil {
		r, err := conn.Run(context.WithoutCancel(ctx), "journalctl -u "+transport.Quote(apiserverUnit)+" -n 10 --no-pager -o cat 2>&1")
		if err == nil {
			fmt.Fprintf(&b, "\n  last kube-apiserver log lines (journalctl -u kube-apiserver -n 10):\n    %s",
				strings.ReplaceAll(strings.TrimSpace(string(r.Stdout)), "\n", "\n    "))
		}
	}
	return errors.New(b.String())
}
