package steps

import (
	"context"
	"fmt"
	"strings"

	"github.com/ezrestore/ezrestore/inventory"
	"github.com/ezrestore/ezrestore/orchestrator"
)

// EtcdSwap puts the restored member dir (and WAL dir) in place. The live ones
// are renamed aside on the same filesystem, never deleted: they are the way
// back. It gives the result to the unit's User=. Run twice, it notices the
// swap already happened and changes nothing.
type EtcdSwap struct{}

func init() { orchestrator.RegisterAction("etcd-swap", EtcdSwap{}) }

// FactSetAside, per host, holds the []string of dirs set aside and the put-back command.
const FactSetAside = "set-aside"

// SetAside says what a swap moved aside on one host and how to undo it.
type SetAside struct {
	Host    string   `json:"host"`
	Paths   []string `json:"paths"`
	PutBack string   `json:"put_back"`
}

func (EtcdSwap) Plan(ctx context.Context, env *orchestrator.Env, step *orchestrator.Step, hosts []*inventory.Host) (*orchestrator.StepPlan, error) {
	sp := &orchestrator.StepPlan{Parallel: true}
	for _, h := range hosts {
		f, err := FactsOf(env, h.Name)
		if err != nil {
			return nil, err
		}
		st := stageFor(env, f)
		cmd := swapScript(st.Data+"/member", st.Member, st.Aside)
		aside := []string{st.Aside}
		if st.Wal != "" {
			cmd += "\n" + swapScript(st.Wal, st.LiveWal, st.AsideWal)
			aside = append(aside, st.AsideWal)
		}
		if u := f.Config.User; u != "" && u != "root" {
			cmd += "\nchown -R -- " + orchestrator.Quote(u+":") + " " + orchestrator.Quote(st.Member)
			if st.Wal != "" {
				cmd += " " + orchestrator.Quote(st.LiveWal)
			}
		}
		env.SetFact(h.Name, FactSetAside, SetAside{Host: h.Name, Paths: aside, PutBack: putBack(st, env.Token)})
		sp.Notes = append(sp.Notes, fmt.Sprintf("%s: old data kept at %s", h.Name, strings.Join(aside, " and ")))
		sp.Tasks = append(sp.Tasks, &orchestrator.Task{Host: h.Name, Ops: []*orchestrator.Op{{
			Kind: orchestrator.OpRun, Desc: "set the old data aside, move the restored data in", Cmd: cmd, Changes: true,
		}}})
	}
	return sp, nil
}

// swapScript moves restored into live's place, first renaming live to aside.
// Paths reach messages as printf arguments, never inside other quotes.
func swapScript(restored, live, aside string) string {
	q := orchestrator.Quote
	return fmt.Sprintf(`r=%[1]s l=%[2]s a=%[3]s
if [ -d "$r" ]; then
  if [ -e "$l" ]; then
    if [ -e "$a" ]; then printf 'both %%s and %%s exist beside a restored %%s: refusing to guess, sort them out by hand\n' "$l" "$a" "$r" >&2; exit 1; fi
    mv -T -- "$l" "$a" && printf 'set aside %%s as %%s\n' "$l" "$a"
  fi
  mv -T -- "$r" "$l" && printf 'restored data now at %%s\n' "$l"
elif [ -e "$a" ] && [ -d "$l" ]; then printf 'already swapped: %%s is the restored data, %%s the old\n' "$l" "$a"
else printf 'no restored data at %%s: run the step "restore snapshot" first\n' "$r" >&2; exit 1
fi`, q(restored), q(live), q(aside))
}
