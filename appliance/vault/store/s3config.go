package store

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// S3Config says where a bucket is and how to reach it. Credentials are
// read from their own file, so settings can be shown and logged whole.
type S3Config struct {
	// Endpoint is the server's URL: https://host[:port]. http:// is
	// accepted for loopback addresses only (a server on the same machine).
	Endpoint string `json:"endpoint"`
	Bucket   string `json:"bucket"`
	// Region is the bucket's region; empty means the server's default.
	Region string `json:"region,omitempty"`
	// Prefix is put before every key, so several vaults can share a
	// bucket; empty means none.
	Prefix string `json:"prefix,omitempty"`
	// CredentialsFile holds {"access_key_id": ..., "secret_access_key": ...}.
	CredentialsFile string `json:"credentials_file"`
	// CAFile is a PEM file of the certificate authorities to trust for the
	// endpoint; empty means the system's.
	CAFile string `json:"ca_file,omitempty"`
	// Lock sets Object Lock retention on every object written; nil means
	// none.
	Lock *ObjectLock `json:"object_lock,omitempty"`
}

// Validate reports the first setting that cannot work, naming the fix.
func (c *S3Config) Validate() error {
	if err := c.validateEndpoint(); err != nil {
		return err
	}
	switch {
	case len(c.Bucket) < 3 || len(c.Bucket) > 63 || strings.Trim(c.Bucket, "abcdefghijklmnopqrstuvwxyz0123456789.-") != "":
		return fmt.Errorf("s3.bucket %q: set a bucket name of 3 to 63 lowercase letters, digits, '.' and '-'", c.Bucket)
	case c.Prefix != "" && (!strings.HasSuffix(c.Prefix, "/") || CheckKey(strings.TrimSuffix(c.Prefix, "/")) != nil):
		return fmt.Errorf("s3.prefix %q: use key segments ending in a slash, like vault1/", c.Prefix)
	case c.CredentialsFile == "":
		return errors.New("s3.credentials_file: set the path of the file holding access_key_id and secret_access_key")
	}
	if c.Lock != nil {
		return c.Lock.validate()
	}
	return nil
}

// validateEndpoint accepts an https URL of a server, or http on this
// machine.
func (c *S3Config) validateEndpoint() error {
	u, err := url.Parse(c.Endpoint)
	switch {
	case c.Endpoint == "" || err != nil || u.Host == "" || (u.Path != "" && u.Path != "/"):
		return fmt.Errorf("s3.endpoint %q: set the server's URL, like https://s3.example.net or https://10.0.0.5:9000", c.Endpoint)
	case u.Scheme == "http" && !loopback(u.Hostname()):
		return fmt.Errorf("s3.endpoint %q: use https; plain http is accepted only for a server on this machine", c.Endpoint)
	case u.Scheme != "http" && u.Scheme != "https":
		return fmt.Errorf("s3.endpoint %q: the URL must start with https://", c.Endpoint)
	}
	return nil
}

func loopback(host string) bool {
	ip := net.ParseIP(host)
	return host == "localhost" || (ip != nil && ip.IsLoopback())
}

// s3Secret is the credentials file's content. It has no String method
// that could show the secret: it is never formatted or logged.
type s3Secret struct {
	AccessKeyID     string `json:"access_key_id"`
	SecretAccessKey string `json:"secret_access_key"`
}

// readSecret reads the credentials file, bounded and strict.
func readSecret(path string) (*s3Secret, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("s3.credentials_file: %w", err)
	}
	defer f.Close()
	dec := json.NewDecoder(io.LimitReader(f, 64<<10))
	dec.DisallowUnknownFields()
	var s s3Secret
	if err := dec.Decode(&s); err != nil || s.AccessKeyID == "" || s.SecretAccessKey == "" {
		return nil, fmt.Errorf("s3.credentials_file %s: write it as {\"access_key_id\": \"...\", \"secret_access_key\": \"...\"} (%v)", path, errors.Unwrap(err))
	}
	return &s, nil
}

// OpenS3 connects to the bucket and checks that it exists and, when Lock
// is set, that it has Object Lock enabled.
func OpenS3(ctx context.Context, c S3Config) (*S3, error) {
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	secret, err := readSecret(c.CredentialsFile)
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	tr, err := transport(c.CAFile)
	if err != nil {
		return nil, err
	}
	u, _ := url.Parse(c.Endpoint)
	cl, err := minio.New(u.Host, &minio.Options{
		Creds:     credentials.NewStaticV4(secret.AccessKeyID, secret.SecretAccessKey, ""),
		Secure:    u.Scheme == "https",
		Region:    c.Region,
		Transport: tr,
		// Path-style requests work with every server; virtual-host style
		// needs DNS for each bucket.
		BucketLookup: minio.BucketLookupPath,
	})
	if err != nil {
		return nil, fmt.Errorf("store: s3 client for %s: %w", c.Endpoint, err)
	}
	s := &S3{core: minio.Core{Client: cl}, bucket: c.Bucket, prefix: c.Prefix, lock: c.Lock}
	// A listing of one key says what BucketExists hides: whether the
	// bucket is missing or the credentials are refused.
	if _, err := s.core.ListObjectsV2(c.Bucket, "", "", "", "", 1); err != nil {
		return nil, s.fail("open bucket", c.Bucket, err)
	}
	if c.Lock != nil {
		if err := s.checkLock(ctx); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// transport is the HTTP transport with timeouts that catch a dead server
// and, if given, the CA file's authorities.
func transport(caFile string) (*http.Transport, error) {
	tr := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: 60 * time.Second,
		IdleConnTimeout:       90 * time.Second,
		MaxIdleConnsPerHost:   64,
		TLSClientConfig:       &tls.Config{MinVersion: tls.VersionTLS12},
	}
	if caFile == "" {
		return tr, nil
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("store: s3.ca_file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("store: s3.ca_file %s: no PEM certificate in it; give the CA's certificate in PEM form", caFile)
	}
	tr.TLSClientConfig.RootCAs = pool
	return tr, nil
}
