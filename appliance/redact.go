package appliance

import (
	"encoding/json"
	"net/url"
	"strings"
)

// hidden replaces a secret in the diagnostic bundle.
const hidden = "xxxxx"

// secretKeys are settings keys whose values are secrets themselves; the
// keys ending in _file name where a secret is kept, which support needs
// to see and which is no secret.
var secretKeys = map[string]bool{
	"password": true, "passphrase": true, "token": true, "secret": true,
	"auth_key": true, "authkey": true, "api_key": true, "key": true, "private_key": true,
}

// redactedSettings is the settings as the diagnostic bundle carries them:
// every value under a key that names a secret blanked, every URL without
// its user's password and its query values, and the alert webhook's URL
// without its path, which for most chat and paging services is the
// secret itself.
func redactedSettings(set *Settings) []byte {
	raw, err := json.Marshal(set)
	if err != nil {
		return []byte(`"the settings could not be written: ` + err.Error() + `"`)
	}
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return []byte(`"the settings could not be read back: ` + err.Error() + `"`)
	}
	out, _ := json.MarshalIndent(redactValue(v), "", "  ") // only maps, slices and scalars
	return out
}

func redactValue(v any) any {
	switch t := v.(type) {
	case map[string]any:
		for k, e := range t {
			switch {
			case isSecretKey(k):
				t[k] = hidden
			case k == "webhook":
				t[k] = redactWebhook(e)
			default:
				t[k] = redactValue(e)
			}
		}
	case []any:
		for i := range t {
			t[i] = redactValue(t[i])
		}
	case string:
		if strings.Contains(t, "://") {
			return redactURL(t, false)
		}
	}
	return v
}

func isSecretKey(k string) bool {
	k = strings.ToLower(k)
	if strings.HasSuffix(k, "_file") {
		return false
	}
	if secretKeys[k] {
		return true
	}
	for _, s := range []string{"_password", "_token", "_secret", "_key"} {
		if strings.HasSuffix(k, s) {
			return true
		}
	}
	return false
}

// redactWebhook blanks the path of the webhook's URL, after the secrets
// every section loses.
func redactWebhook(v any) any {
	v = redactValue(v)
	if m, ok := v.(map[string]any); ok {
		if s, ok := m["url"].(string); ok {
			m["url"] = redactURL(s, true)
		}
	}
	return v
}

// redactURL removes the user's password and every query value and
// fragment from a URL, and with path also the path.
func redactURL(raw string, path bool) string {
	u, err := url.Parse(raw)
	if err != nil {
		return hidden
	}
	if _, has := u.User.Password(); has {
		u.User = url.UserPassword(u.User.Username(), hidden)
	}
	if u.RawQuery != "" {
		q := u.Query()
		for k := range q {
			q[k] = []string{hidden}
		}
		u.RawQuery = q.Encode()
	}
	if u.Fragment != "" {
		u.Fragment = hidden
	}
	if path && u.Path != "" && u.Path != "/" {
		u.Path, u.RawPath = "/"+hidden, ""
	}
	return u.String()
}
