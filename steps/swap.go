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
		cmd := etcdStoppedScript()
		if u := f.Config.User; u != "" && u != "root" {
			// Owned by the unit's user before it moves in, so nothing of
			// the live dirs is chowned that was not restored.
			cmd += "\nif [ -d " + transport.Quote(st.Data+"/member") + " ]; then chown -R -- " + transport.Quote(u+":") + " " + transport.Quote(st.Data+"/member") + "; fi"
			if st.Wal != "" {
				cmd += "\nif [ -d " + transport.Quote(st.Wal) + " ]; then chown -R -- " + transport.Quote(u+":") + " " + transport.Quote(st.Wal) + "; fi"
			}
		}
		if st.MemberInPlace {
			// The restore's data dir, inside member/, goes once emptied.
			cmd += "\n" + swapContentsScript(st.Data+"/member", st.Member, st.Aside, restoreStep) +
				"\nif [ -d " + transport.Quote(st.Data) + " ]; then rmdir -- " + transport.Quote(st.Data) + " || exit 1; fi"
		} else {
			cmd += "\n" + swapScript(st.Data+"/member", st.Member, st.Aside, restoreStep)
		}
		aside := []string{st.Aside}
		switch {
		case st.WalInPlace:
			cmd += "\n" + swapContentsScript(st.Wal, st.LiveWal, st.AsideWal, restoreStep)
			aside = append(aside, st.AsideWal)
		case st.Wal != "":
			cmd += "\n" + swapScript(st.Wal, st.LiveWal, st.AsideWal, restoreStep)
			aside = append(aside, st.AsideWal)
		}
		// The disks as preflight found them: mounts, symlinks, owners and
		// modes; a dir replaced by a rename gets the old one's owner and mode.
		if d, ok := f.LayoutOf("data"); ok {
			cmd += "\n" + etcdhost.KeepLayoutScript(d, false)
		}
		if d, ok := f.LayoutOf("member"); ok {
			cmd += "\n" + etcdhost.KeepLayoutScript(d, !st.MemberInPlace)
		}
		if d, ok := f.LayoutOf("wal"); ok {
			cmd += "\n" + etcdhost.KeepLayoutScript(d, !st.WalInPlace)
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
    mv -T -- "$l" "$a" || exit 1
    printf 'set aside %%s as %%s\n' "$l" "$a"
  fi
  mv -T -- "$r" "$l" || exit 1
  printf 'restored data now at %%s\n' "$l"
elif [ -e "$a" ] && [ -d "$l" ]; then printf 'already swapped: %%s is the restored data, %%s the old\n' "$l" "$a"
else printf 'no restored data at %%s: run the step %%s first\n' "$r" %[4]s >&2; exit 1
fi`, q(restored), q(live), q(aside), q(restoreStep))
}

// swapContentsScript is swapScript for a live dir that must stay where it is
// (a mount point, a symlink): its entries move into aside, a new dir inside
// it, then the restored dir's entries move into it, all by rename within its
// filesystem. Run again, it notices the swap happened and changes nothing; a
// swap cut off between the two moves (live holding data while both aside and
// restored exist) is refused, not guessed at.
func swapContentsScript(restored, live, aside, restoreStep string) string {
	q := transport.Quote
	return fmt.Sprintf(`r=%[1]s l=%[2]s a=%[3]s
if [ -d "$r" ]; then
  if [ -e "$a" ]; then
    if [ -n "$(find -H "$l" -mindepth 1 -maxdepth 1 %[5]s -print -quit)" ]; then printf '%%s holds data while both %%s (set aside) and %%s (restored) exist: a swap was cut off; refusing to guess, sort them out by hand\n' "$l" "$a" "$r" >&2; exit 1; fi
  else mkdir -m 0700 -- "$a" || exit 1
  fi
  %[6]s || exit 1
  printf 'set aside the contents of %%s in %%s\n' "$l" "$a"
  %[7]s && rmdir -- "$r" || exit 1
  printf 'restored data now in %%s (the dir itself stays)\n' "$l"
elif [ -d "$a" ]; then printf 'already swapped: %%s holds the restored data, %%s the old\n' "$l" "$a"
else printf 'no restored data at %%s: run the step %%s first\n' "$r" %[4]s >&2; exit 1
fi`, q(restored), q(live), q(aside), q(restoreStep), etcdhost.InPlaceSkip,
		etcdhost.MoveContentsCommand(live, aside), etcdhost.MoveContentsCommand(restored, live))
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
