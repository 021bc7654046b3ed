package backup

// The rebuild kit beside each offsite copy: the cluster dir's inventory,
// config, certificates and recorded host keys, so a lost bastion does not
// take the way back to the cluster with it (package kit packs and unpacks).

import (
	"bytes"
	"context"
	"path"
	"time"

	"github.com/ezrestore/ezrestore/kit"
	"github.com/ezrestore/ezrestore/offsite"
	"github.com/ezrestore/ezrestore/seal"
	"github.com/ezrestore/ezrestore/snapshot"
)

// KitNeedsRecipients is why a kit is not copied offsite without --age-recipient.
const KitNeedsRecipients = "the rebuild kit (the cluster dir's ssl/ with the CA keys, kubectl.kubeconfig, inventory) is copied offsite only encrypted: give --age-recipient or --age-recipients-file; the snapshot was copied without it"

// uploadKit packs o.Kit, encrypts it to the same recipients and stores it
// beside the snapshot object key (read back, as every upload), and records
// it in the sidecar side. Without recipients it stores nothing and says why.
func (o *Offsite) uploadKit(ctx context.Context, key string, side *snapshot.Sidecar, up *Uploaded) error {
	if o.Kit == nil {
		return nil
	}
	if o.Recipients.Len() == 0 {
		up.KitSkipped = KitNeedsRecipients
		return nil
	}
	data, m, err := kit.Build(*o.Kit, time.Now())
	if err != nil {
		return err
	}
	enc, err := seal.Encrypt(bytes.NewReader(data), o.Recipients)
	if err != nil {
		return err
	}
	kkey := path.Join(path.Dir(key), offsite.KitName(path.Base(key)))
	obj, err := o.Store.Put(ctx, kkey, enc, int64(len(data)))
	if err != nil {
		return err
	}
	side.Kit, side.KitSize, side.KitSHA256 = path.Base(kkey), obj.Size, obj.SHA256
	up.KitURL, up.KitFiles = o.Store.URL(kkey), m.Files
	return nil
}
