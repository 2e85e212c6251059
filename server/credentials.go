package server

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// LoadCredentials reads an AWS shared-credentials file (the INI format of
// ~/.aws/credentials) and returns every profile's key pair as a map from
// access key ID to secret access key, ready for [Options.Credentials]:
//
//	[default]
//	aws_access_key_id = AKIAEXAMPLE
//	aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY
//
//	[ci]
//	aws_access_key_id = AKIACI
//	aws_secret_access_key = another-secret
//
// Other keys (aws_session_token, region, ...) are ignored. A profile with
// only half a pair, one access key ID with two secrets, or a file with no
// pair at all is an error.
func LoadCredentials(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	creds, err := ParseCredentials(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return creds, nil
}

// ParseCredentials is [LoadCredentials] on a reader.
func ParseCredentials(r io.Reader) (map[string]string, error) {
	type profile struct {
		name, id, secret string
		line             int
	}
	var (
		profiles []*profile
		cur      *profile
		errs     []error
		skipSub  bool // inside an indented sub-section ("s3 =\n  key = v")
	)
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		raw := sc.Text()
		line := strings.TrimSpace(raw)
		if line == "" || line[0] == '#' || line[0] == ';' {
			continue
		}
		if skipSub && raw[0] != line[0] {
			continue
		}
		skipSub = false
		if line[0] == '[' {
			if !strings.HasSuffix(line, "]") {
				errs = append(errs, fmt.Errorf("line %d: section header %q lacks its ']'", n, line))
				continue
			}
			name := strings.TrimSpace(line[1 : len(line)-1])
			name = strings.TrimSpace(strings.TrimPrefix(name, "profile "))
			cur = &profile{name: name, line: n}
			profiles = append(profiles, cur)
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			errs = append(errs, fmt.Errorf("line %d: want key = value, got %q", n, clipSecretless(line)))
			continue
		}
		if cur == nil {
			errs = append(errs, fmt.Errorf("line %d: %s comes before any [profile] section", n, strings.TrimSpace(k)))
			continue
		}
		k, v = strings.ToLower(strings.TrimSpace(k)), strings.TrimSpace(v)
		switch k {
		case "aws_access_key_id":
			cur.id = v
		case "aws_secret_access_key":
			cur.secret = v
		default:
			skipSub = v == ""
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	creds := map[string]string{}
	for _, p := range profiles {
		switch {
		case p.id == "" && p.secret == "":
			// A profile of other settings (region, role_arn, ...).
		case p.id == "":
			errs = append(errs, fmt.Errorf("profile [%s] (line %d) has aws_secret_access_key but no aws_access_key_id", p.name, p.line))
		case p.secret == "":
			errs = append(errs, fmt.Errorf("profile [%s] (line %d) has aws_access_key_id %s but no aws_secret_access_key", p.name, p.line, p.id))
		case creds[p.id] != "" && creds[p.id] != p.secret:
			errs = append(errs, fmt.Errorf("profile [%s] (line %d) gives access key ID %s a second, different secret", p.name, p.line, p.id))
		default:
			creds[p.id] = p.secret
		}
	}
	if len(errs) == 0 && len(creds) == 0 {
		errs = append(errs, errors.New("no profile has both aws_access_key_id and aws_secret_access_key"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return creds, nil
}

// clipSecretless keeps a malformed line out of error messages beyond its
// first few bytes: it may be a secret missing its key.
func clipSecretless(s string) string {
	if len(s) > 8 {
		return s[:4] + "..."
	}
	return s
}
