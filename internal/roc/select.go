package roc

// selectTop reorders a so that a[:k] hold its k largest values and a[k-1]
// the least of those (quickselect with three-way partitions, so that runs
// of equal scores do not make it quadratic). 0 <= k <= len(a).
func selectTop(a []float32, k int) {
	if k <= 0 || k >= len(a) {
		if k == len(a) && k > 0 {
			moveMinLast(a)
		}
		return
	}
	lo, hi := 0, len(a) // a[k-1]'s place lies in a[lo:hi]
	x := uint64(0x9e3779b97f4a7c15)
	for hi-lo > 1 {
		x = x*6364136223846793005 + 1442695040888963407 // a fixed LCG: pivots at random, runs repeatable
		p := a[lo+int((x>>33)%uint64(hi-lo))]
		lt, i, gt := lo, lo, hi // a[lo:lt] > p, a[lt:i] == p, a[gt:hi] < p
		for i < gt {
			switch v := a[i]; {
			case v > p:
				a[lt], a[i] = v, a[lt]
				lt++
				i++
			case v < p:
				gt--
				a[i], a[gt] = a[gt], v
			default:
				i++
			}
		}
		switch {
		case k-1 < lt:
			hi = lt
		case k-1 >= gt:
			lo = gt
		default:
			return
		}
	}
}

// moveMinLast swaps a's least value into its last place.
func moveMinLast(a []float32) {
	m := len(a) - 1
	for i, v := range a {
		if v < a[m] {
			m = i
		}
	}
	a[m], a[len(a)-1] = a[len(a)-1], a[m]
}
