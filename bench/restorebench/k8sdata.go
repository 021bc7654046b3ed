package main

import (
	"context"
	"encoding/hex"
	"fmt"
	"math/rand"
	"strings"
	"time"

	"github.com/ezrestore/ezrestore/internal/testkit/etcdtest"
)

// k8sObject makes one value shaped like what a Kubernetes API server keeps in
// etcd: a JSON object (as CRDs are stored; built-in kinds are protobuf with
// the same strings) with metadata, labels, annotations, managed fields and a
// spec or data of its kind. Names, UIDs, IPs, times and resource versions
// vary; ConfigMap and Secret data carry random bytes (base64-like), so the
// whole is neither all repetition nor all noise.
func k8sObject(rng *rand.Rand, kind, ns, name string, rv int64) []byte {
	uid := func() string {
		b := make([]byte, 16)
		rng.Read(b)
		h := hex.EncodeToString(b)
		return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
	}
	ts := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(rng.Intn(300*24*3600)) * time.Second).Format(time.RFC3339)
	app := []string{"web", "api", "worker", "cache", "ingest", "billing", "search", "auth"}[rng.Intn(8)]
	var b strings.Builder
	fmt.Fprintf(&b, `{"kind":%q,"apiVersion":"v1","metadata":{"name":%q,"namespace":%q,"uid":%q,"resourceVersion":"%d","creationTimestamp":%q,`, kind, name, ns, uid(), rv, ts)
	fmt.Fprintf(&b, `"labels":{"app.kubernetes.io/name":%q,"app.kubernetes.io/instance":"%s-%d","pod-template-hash":"%x","team":"team-%d"},`, app, app, rng.Intn(40), rng.Int63()&0xffffffffff, rng.Intn(30))
	fmt.Fprintf(&b, `"annotations":{"kubectl.kubernetes.io/last-applied-configuration":"{\"apiVersion\":\"v1\",\"kind\":\"%s\",\"metadata\":{\"name\":\"%s\",\"namespace\":\"%s\"}}"},`, kind, name, ns)
	fmt.Fprintf(&b, `"managedFields":[{"manager":"kube-controller-manager","operation":"Update","apiVersion":"v1","time":%q,"fieldsType":"FieldsV1","fieldsV1":{"f:metadata":{"f:labels":{".":{},"f:app.kubernetes.io/name":{},"f:pod-template-hash":{}},"f:ownerReferences":{".":{},"k:{\"uid\":\"%s\"}":{}}},"f:spec":{"f:containers":{"k:{\"name\":\"%s\"}":{".":{},"f:image":{},"f:imagePullPolicy":{},"f:name":{},"f:resources":{".":{},"f:limits":{".":{},"f:cpu":{},"f:memory":{}}}}}}}}],`, ts, uid(), app)
	fmt.Fprintf(&b, `"ownerReferences":[{"apiVersion":"apps/v1","kind":"ReplicaSet","name":"%s-%x","uid":%q,"controller":true,"blockOwnerDeletion":true}]},`, app, rng.Int63()&0xffffffff, uid())
	switch kind {
	case "Pod":
		fmt.Fprintf(&b, `"spec":{"volumes":[{"name":"kube-api-access-%05x","projected":{"sources":[{"serviceAccountToken":{"expirationSeconds":3607,"path":"token"}},{"configMap":{"name":"kube-root-ca.crt","items":[{"key":"ca.crt","path":"ca.crt"}]}}],"defaultMode":420}}],`, rng.Intn(1<<20))
		fmt.Fprintf(&b, `"containers":[{"name":%q,"image":"registry.example.com/%s:v1.%d.%d","ports":[{"containerPort":%d,"protocol":"TCP"}],"env":[{"name":"LOG_LEVEL","value":"info"},{"name":"POD_IP","valueFrom":{"fieldRef":{"apiVersion":"v1","fieldPath":"status.podIP"}}}],"resources":{"limits":{"cpu":"%dm","memory":"%dMi"},"requests":{"cpu":"%dm","memory":"%dMi"}},"terminationMessagePath":"/dev/termination-log","terminationMessagePolicy":"File","imagePullPolicy":"IfNotPresent"}],`, app, app, rng.Intn(30), rng.Intn(10), 8000+rng.Intn(100), 100*(1+rng.Intn(20)), 128*(1+rng.Intn(16)), 50*(1+rng.Intn(10)), 64*(1+rng.Intn(16)))
		fmt.Fprintf(&b, `"restartPolicy":"Always","terminationGracePeriodSeconds":30,"dnsPolicy":"ClusterFirst","serviceAccountName":"default","nodeName":"node-%03d","securityContext":{},"schedulerName":"default-scheduler","tolerations":[{"key":"node.kubernetes.io/not-ready","operator":"Exists","effect":"NoExecute","tolerationSeconds":300}],"priority":0,"enableServiceLinks":true,"preemptionPolicy":"PreemptLowerPriority"},`, rng.Intn(300))
		fmt.Fprintf(&b, `"status":{"phase":"Running","conditions":[{"type":"Ready","status":"True","lastTransitionTime":%q},{"type":"PodScheduled","status":"True","lastTransitionTime":%q}],"hostIP":"10.%d.%d.%d","podIP":"172.%d.%d.%d","startTime":%q,"containerStatuses":[{"name":%q,"ready":true,"restartCount":%d,"image":"registry.example.com/%s","imageID":"registry.example.com/%s@sha256:%x%x","containerID":"containerd://%x%x%x%x"}],"qosClass":"Burstable"}}`,
			ts, ts, rng.Intn(256), rng.Intn(256), rng.Intn(256), 16+rng.Intn(16), rng.Intn(256), rng.Intn(256), ts, app, rng.Intn(5), app, app, rng.Uint64(), rng.Uint64(), rng.Uint64(), rng.Uint64(), rng.Uint64(), rng.Uint64())
	default: // ConfigMap and Secret: data with random content
		n := 600 + rng.Intn(1800)
		raw := make([]byte, n*3/4)
		rng.Read(raw)
		fmt.Fprintf(&b, `"data":{"config.yaml":"server:\n  port: %d\n  logLevel: info\nfeatures:\n  tracing: true\n","blob":"%s"}}`, 8000+rng.Intn(100), hex.EncodeToString(raw)[:n])
	}
	return []byte(b.String())
}

// fillK8s writes Kubernetes-shaped objects (pods mostly, config maps and
// secrets) into srv with 8 writers until its database reaches size bytes.
func fillK8s(ctx context.Context, srv *etcdtest.Server, size int64) error {
	f := &etcdtest.Filler{Server: srv, Batch: 4000, KV: func(rng *rand.Rand, n int) (string, []byte) {
		ns := fmt.Sprintf("team-%02d-prod", n%60)
		kind, res := "Pod", "pods"
		switch n % 10 {
		case 7, 8:
			kind, res = "ConfigMap", "configmaps"
		case 9:
			kind, res = "Secret", "secrets"
		}
		name := fmt.Sprintf("%s-%x", strings.ToLower(kind), n)
		return fmt.Sprintf("/registry/%s/%s/%s", res, ns, name), k8sObject(rng, kind, ns, name, int64(n))
	}}
	return f.Fill(ctx, size)
}
