-- One hot row in an explicit transaction: read it, then add to it.
\set delta random(1, 10)
BEGIN;
SELECT v FROM hot WHERE k = 1;
UPDATE hot SET v = v + :delta WHERE k = 1;
COMMIT;
