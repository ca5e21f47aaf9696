;; SPDX-License-Identifier: MIT
;; Guile 3.0's VM stack expansion against its collector (no hakmem code
;; involved). Fresh threads start with a one-page VM stack and recurse
;; deeply (not in tail position), so each expands its stack about ten
;; times while the other threads allocate and collect. vm_expand_stack
;; (libguile/vm.c) moves the stack under the collector's lock but sets
;; vp->sp only after releasing it; a collection that stops the thread in
;; between marks and madvises from a stale sp. Run by guile_stack_race.sh.
(use-modules (ice-9 threads) (ice-9 format))
(setvbuf (current-output-port) 'line)
(define (deep n) (if (= n 0) '() (cons (number->string n) (deep (- n 1)))))
(define (job i)
  (let loop ((k 0) (acc 0))
    (if (= k 3) acc
        (loop (+ k 1) (+ acc (length (deep (+ 5000 (* 997 (modulo (* i k) 13))))))))))
(define waves (string->number (or (getenv "WAVES") "20")))
(define sum 0)
(do ((w 0 (+ w 1))) ((= w waves))
  (set! sum (+ sum (apply + (map join-thread
                                  (map (lambda (i) (call-with-new-thread (lambda () (job (+ i (* 6 w))))))
                                       (iota 6)))))))
(format #t "race ~a~%" sum)
