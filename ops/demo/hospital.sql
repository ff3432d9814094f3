-- Demo agency database: a deterministic synthetic table of hospital visits (120,000 rows).
SET client_min_messages = warning;
-- Nothing here is real. setseed() makes random() reproducible, so every machine gets the same rows.
-- Columns: a direct identifier (name, national id), quasi-identifiers (birth date, sex, postcode),
-- the admission date, a sensitive diagnosis code and the cost.
DROP SCHEMA IF EXISTS hospital CASCADE;
CREATE SCHEMA hospital;

CREATE TABLE hospital.visits (
    visit_id        bigint PRIMARY KEY,
    name            text NOT NULL,
    national_id     text NOT NULL,
    birth_date      date NOT NULL,
    sex             text NOT NULL,
    postcode        text NOT NULL,
    admission_date  date NOT NULL,
    diagnosis_code  text NOT NULL,
    cost            numeric(10,2) NOT NULL
);

SELECT setseed(0.20261127);

WITH first_names(a) AS (SELECT ARRAY['Anna','Ben','Clara','David','Eva','Felix','Greta','Hugo','Ida','Jonas',
        'Karin','Lukas','Maria','Nils','Olga','Paul','Rosa','Simon','Tina','Viktor','Wanda','Yusuf','Zoe','Amir']),
     last_names(a) AS (SELECT ARRAY['Meyer','Schmidt','Novak','Rossi','Garcia','Jensen','Kowalski','Dubois',
        'Nielsen','Horvat','Silva','Berg','Laine','Popescu','Weber','Costa','Varga','Smith','Olsen','Keller']),
     diagnoses(a) AS (SELECT ARRAY['I10','E11','J45','M54','F32','K21','I25','J18','N39','C50',
        'S72','G43','L40','R51','Z00','A09','E78','I48','K35','O80']),
     raw AS (
        SELECT g AS visit_id, random() AS r1, random() AS r2, random() AS r3, random() AS r4,
               random() AS r5, random() AS r6, random() AS r7, random() AS r8, random() AS r9
        FROM generate_series(1, 120000) AS g)
INSERT INTO hospital.visits
SELECT visit_id,
       (SELECT a[1 + floor(r1 * array_length(a, 1))::int] FROM first_names) || ' ' ||
       (SELECT a[1 + floor(r2 * array_length(a, 1))::int] FROM last_names),
       lpad((floor(r3 * 1e9))::bigint::text, 9, '0') || lpad(visit_id::text, 6, '0'),
       DATE '1930-01-01' + floor(power(r4, 0.8) * 30000)::int,
       CASE WHEN r5 < 0.51 THEN 'F' ELSE 'M' END,
       lpad((10000 + floor(power(r6, 1.6) * 89999))::int::text, 5, '0'),
       DATE '2024-01-01' + floor(r7 * 730)::int,
       (SELECT a[1 + floor(power(r8, 1.3) * array_length(a, 1))::int] FROM diagnoses),
       round((200 + power(r9, 2.5) * 45000)::numeric, 2)
FROM raw;

ANALYZE hospital.visits;
