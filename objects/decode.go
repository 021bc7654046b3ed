package objects

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/yaml"
)

// protoMagic opens every protobuf value the apiserver writes (runtime.Unknown behind it).
var protoMagic = []byte("k8s\x00")

// Object is one stored object, decoded.
type Object struct {
	Ref Ref    `json:"-"`
	Key string `json:"key"`
	// From the object itself (TypeMeta and ObjectMeta), empty while it is encrypted.
	APIVersion      string                  `json:"apiVersion,omitempty"`
	Kind            string                  `json:"kind,omitempty"`
	Namespace       string                  `json:"namespace,omitempty"`
	Name            string                  `json:"name"`
	UID             string                  `json:"uid,omitempty"`
	OwnerReferences []metav1.OwnerReference `json:"ownerReferences,omitempty"`
	// ModRevision is the key's mod revision: the object's resourceVersion.
	ModRevision int64 `json:"modRevision"`
	// Encryption names the provider and key of a value encrypted at rest;
	// nil for a value stored in the clear.
	Encryption *Encryption `json:"encryption,omitempty"`
	// Object is the decoded object with resourceVersion filled in; nil while
	// the value is encrypted and no key was given.
	Object runtime.Object `json:"-"`
	// Partial is set when the type is not one this build knows: Object then
	// holds the metadata alone (metav1.PartialObjectMetadata).
	Partial bool `json:"partial,omitempty"`
	// Format is how the apiserver serialized the value: protobuf or json.
	Format string `json:"format,omitempty"`
	// Plain is the serialized object as the apiserver wrote it before any
	// encryption (what it reads back after decrypting).
	Plain []byte `json:"-"`
}

// Encryption says how a value is encrypted at rest.
type Encryption struct {
	Provider string `json:"provider"`
	Key      string `json:"key"`
	// Decrypted is whether the value could be read with the configuration given.
	Decrypted bool `json:"decrypted"`
}

// Decoder decodes stored values; with Encryption set it decrypts values
// encrypted at rest by the providers that configuration names.
type Decoder struct {
	Encryption *EncryptionConfig
}

// Decode decodes a value without any encryption configuration: an encrypted
// value comes back with its Encryption named and no Object.
func Decode(key string, value []byte, modRev int64) (*Object, error) {
	return (&Decoder{}).Decode(key, value, modRev)
}

// Decode turns a key, its value and its mod revision into an Object, as the
// apiserver reads it: decrypt if the value is encrypted (and a key is
// configured), decode the protobuf envelope with the built-in types' own
// decoders or the JSON of a custom resource, and fill metadata.resourceVersion
// from the mod revision. An encrypted value without a configuration is not an
// error: the Object names its provider and key. A value that cannot be
// decrypted with the configuration given, or not decoded, is.
func (d *Decoder) Decode(key string, value []byte, modRev int64) (*Object, error) {
	ref, err := ParseKey(key)
	if err != nil {
		return nil, err
	}
	o := &Object{Ref: ref, Key: key, Namespace: ref.Namespace, Name: ref.Name, ModRevision: modRev, Kind: ref.Resource.Kind}
	plain := value
	if provider, keyName, ok := EncryptedKeyOf(value); ok {
		o.Encryption = &Encryption{Provider: provider, Key: keyName}
		if d.Encryption == nil {
			return o, nil
		}
		plain, err = d.Encryption.Decrypt(key, value)
		if err != nil {
			return o, err
		}
		o.Encryption.Decrypted = true
	}
	o.Plain = plain
	switch {
	case bytes.HasPrefix(plain, protoMagic):
		o.Format = "protobuf"
		err = o.decodeProto(plain)
	case len(bytes.TrimLeft(plain, " \t\r\n")) > 0 && bytes.TrimLeft(plain, " \t\r\n")[0] == '{':
		o.Format = "json"
		err = o.decodeJSON(plain)
	default:
		err = fmt.Errorf("neither the apiserver's protobuf envelope (k8s\\x00) nor JSON (starts %q)", head(plain))
	}
	if err != nil {
		return o, fmt.Errorf("key %s: %w", key, err)
	}
	m, err := meta.Accessor(o.Object)
	if err != nil {
		return o, fmt.Errorf("key %s: %w", key, err)
	}
	m.SetResourceVersion(strconv.FormatInt(modRev, 10))
	o.APIVersion, o.Kind = o.Object.GetObjectKind().GroupVersionKind().ToAPIVersionAndKind()
	o.Namespace, o.Name, o.UID = m.GetNamespace(), m.GetName(), string(m.GetUID())
	o.OwnerReferences = m.GetOwnerReferences()
	return o, nil
}

func (o *Object) decodeProto(data []byte) error {
	obj, gvk, err := protoSerializer.Decode(data, nil, nil)
	if err == nil {
		obj.GetObjectKind().SetGroupVersionKind(*gvk)
		o.Object = obj
		return nil
	}
	if !runtime.IsNotRegisteredError(err) {
		return fmt.Errorf("protobuf value: %w", err)
	}
	// A type this build does not know (newer than k8s.io/api v0.34, or an
	// aggregated API's): every Kubernetes object carries its ObjectMeta as
	// field 1, which PartialObjectMetadata reads and the rest is skipped.
	var unk runtime.Unknown
	if err := unk.Unmarshal(data[len(protoMagic):]); err != nil {
		return fmt.Errorf("protobuf envelope: %w", err)
	}
	pm := &metav1.PartialObjectMetadata{}
	if err := pm.Unmarshal(unk.Raw); err != nil {
		return fmt.Errorf("%s/%s not known to this build, and its metadata could not be read: %w", unk.APIVersion, unk.Kind, err)
	}
	pm.APIVersion, pm.Kind = unk.APIVersion, unk.Kind
	o.Object, o.Partial = pm, true
	return nil
}

func (o *Object) decodeJSON(data []byte) error {
	u := &unstructured.Unstructured{}
	if err := u.UnmarshalJSON(data); err != nil {
		return fmt.Errorf("JSON value: %w", err)
	}
	o.Object = u
	return nil
}

// JSON is the object as kubectl get -o json prints it.
func (o *Object) JSON() ([]byte, error) {
	if o.Object == nil {
		return nil, o.encryptedError()
	}
	b, err := json.MarshalIndent(o.Object, "", "    ")
	if err != nil {
		return nil, fmt.Errorf("key %s: %w", o.Key, err)
	}
	return append(b, '\n'), nil
}

// YAML is the object as kubectl get -o yaml prints it.
func (o *Object) YAML() ([]byte, error) {
	if o.Object == nil {
		return nil, o.encryptedError()
	}
	b, err := yaml.Marshal(o.Object)
	if err != nil {
		return nil, fmt.Errorf("key %s: %w", o.Key, err)
	}
	return b, nil
}

func (o *Object) encryptedError() error {
	if o.Encryption != nil {
		return fmt.Errorf("%s is encrypted at rest (provider %s, key %s): pass --encryption-config with the apiserver's EncryptionConfiguration to read it",
			o.Key, o.Encryption.Provider, o.Encryption.Key)
	}
	return fmt.Errorf("%s: not decoded", o.Key)
}

func head(b []byte) []byte {
	if len(b) > 16 {
		return b[:16]
	}
	return b
}
