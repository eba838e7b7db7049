-- The queued requests alone, by age and by lane: a claim walks them in age order and asks each
-- whether it heads its lane, rather than grouping every due request by lane at every claim. They
-- replace the index of every request by status, whose entries for the whole history moved at each
-- claim and end (every run's end wrote its pages again).
CREATE INDEX run_requests_queued ON run_requests (id) WHERE status = 'queued';
CREATE INDEX run_requests_queued_by_lane ON run_requests (lane, id) WHERE status = 'queued';
DROP INDEX run_requests_due;
