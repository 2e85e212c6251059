package server

import "net/http"

// scopeRegion is the region of r's SigV4 credential scope, which the
// engine names in collection ARNs as Rekognition names its own: the
// verified signature's when the server checks signatures (sig is not nil),
// else the region an unchecked Authorization header names, or "" when it
// names none.
func scopeRegion(r *http.Request, sig *sigCheck) string {
	if sig != nil {
		return sig.auth.region
	}
	h := r.Header.Get("Authorization")
	if h == "" {
		return ""
	}
	a, err := parseAuthorization(h)
	if err != nil {
		return ""
	}
	return a.region
}
