-- One hot row: every client adds to it, one statement per transaction (auto-commit).
\set delta random(1, 10)
UPDATE hot SET v = v + :delta WHERE k = 1;
