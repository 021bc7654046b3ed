package steps

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/ezrestore/ezrestore/etcdhost"
	"github.com/ezrestore/ezrestore/inventory"
	"github.com/ezrestore/ezrestore/orchestrator"
	"github.com/ezrestore/ezrestore/transport"
)

// EtcdSwap puts the restored member dir (and WAL dir) in place. The live ones
// are renamed aside on the same filesystem, never deleted: they are the way
// back. It gives the result to the unit's User=. Run twice, it notices the
// swap already happened and changes nothing.
type EtcdSwap struct{ r *Restore }

// SetAside says what a swap moved aside on one host and how to undo it.
type SetAside struct {
	Host    string   `json:"host"`
	Paths   []string `json:"paths"`
	PutBack string   `json:"put_back"`
}

func (s *EtcdSwap) Plan(ctx context.Context, env *orchestrator.Env, step *orchestrator.Step, hosts []*inventory.Host) (*orchestrator.StepPlan, error) {
	sp := &orchestrator.StepPlan{Parallel: true}
	restoreStep := "that restores the snapshot"
	if i := orchestrator.StepOf[*EtcdRestore](env); i >= 0 {
		restoreStep = strconv.Quote(env.Playbook.Steps[i].Name)
	}
	for _, h := range hosts {
		f, err := s.r.Etcd(h.Name)
		if err != nil {
			return nil, err
		}
		st := etcdhost.StageFor(s.r.Token, f)
		// The precondition, checked on the host right before anything
		// moves: etcd must not be running on the data it is about to lose.
		cmd := etcdStoppedScript() + "\n" + swapScript(st.Data+"/member", st.Member, st.Aside, restoreStep)
		aside := []string{st.Aside}
		if st.Wal != "" {
			cmd += "\n" + swapScript(st.Wal, st.LiveWal, st.AsideWal, restoreStep)
			aside = append(aside, st.AsideWal)
		}
		if u := f.Config.User; u != "" && u != "root" {
			cmd += "\nchown -R -- " + transport.Quote(u+":") + " " + transport.Quote(st.Member)
			if st.Wal != "" {
				cmd += " " + transport.Quote(st.LiveWal)
			}
		}
		s.r.Host(h.Name).SetAside = &SetAside{Host: h.Name, Paths: aside, PutBack: etcdhost.PutBackCommand(st, s.r.Token)}
		sp.Notes = append(sp.Notes, fmt.Sprintf("%s: old data kept at %s", h.Name, strings.Join(aside, " and ")))
		sp.Tasks = append(sp.Tasks, &orchestrator.Task{Host: h.Name, Ops: []*orchestrator.Op{{
			Kind: orchestrator.OpRun, Desc: "set the old data aside, move the restored data in", Cmd: cmd, Changes: true,
		}}})
	}
	return sp, nil
}

// swapScript moves restored into live's place, first renaming live to aside.
// Paths reach messages as printf arguments, never inside other quotes.
func swapScript(restored, live, aside, restoreStep string) string {
	q := transport.Quote
	return fmt.Sprintf(`r=%[1]s l=%[2]s a=%[3]s
if [ -d "$r" ]; then
  if [ -e "$l" ]; then
    if [ -e "$a" ]; then printf 'both %%s and %%s exist beside a restored %%s: refusing to guess, sort them out by hand\n' "$l" "$a" "$r" >&2; exit 1; fi
    mv -T -- "$l" "$a" && printf 'set aside %%s as %%s\n' "$l" "$a"
  fi
  mv -T -- "$r" "$l" && printf 'restored data now at %%s\n' "$l"
elif [ -e "$a" ] && [ -d "$l" ]; then printf 'already swapped: %%s is the restored data, %%s the old\n' "$l" "$a"
else printf 'no restored data at %%s: run the step %%s first\n' "$r" %[4]s >&2; exit 1
fi`, q(restored), q(live), q(aside), q(restoreStep))
}

// etcdStoppedScript makes sure etcd is not running before its data dir moves.
// A host that rebooted after "stop etcd" (an enabled unit) or a unit with
// Restart=always brought back by hand runs etcd on the old data again: it is
// stopped here, and the output says so.
func etcdStoppedScript() string {
	// Not `is-active`: a member waiting for its peers is "activating" and
	// already holds the data dir.
	return `case $(systemctl show -p ActiveState etcd.service) in
ActiveState=inactive|ActiveState=failed) ;;
*) echo "note: etcd was running again (the host rebooted, or it was started after the stop step): stopped it before moving its data"
  systemctl stop etcd.service
  case $(systemctl show -p ActiveState etcd.service) in
  ActiveState=inactive|ActiveState=failed) ;;
  *) echo "etcd is still running after systemctl stop: refusing to move its data dir" >&2; exit 1;;
  esac;;
esac`
}
