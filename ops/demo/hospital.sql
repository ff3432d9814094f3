-- Demo agency database: a deterministic synthetic table of hospital visits (120,000 rows), with the
-- columns of policies/examples/hospital-visits.json. Nothing here is real. setseed() makes random()
-- reproducible, so every machine gets the same rows.
SET client_min_messages = warning;
DROP SCHEMA IF EXISTS hospital CASCADE;
CREATE SCHEMA hospital;

CREATE TABLE hospital.visits (
    visit_id        bigint PRIMARY KEY,
    patient_id      text NOT NULL,          -- national patient number (direct identifier)
    patient_name    text NOT NULL,
    contact_email   text NOT NULL,
    birth_date      date NOT NULL,
    postal_code     text NOT NULL,
    sex             text NOT NULL,
    admission_date  date NOT NULL,
    ward            text NOT NULL,
    diagnosis       text,                   -- ICD-10 chapter of the main diagnosis (sensitive)
    length_of_stay  integer NOT NULL,
    cost            numeric(10,2) NOT NULL
);

DO $$ BEGIN PERFORM setseed(0.20261127); END $$;

-- 60,000 patients, each with one to three visits.
WITH first_names(a) AS (SELECT ARRAY['Anna','Ben','Clara','David','Eva','Felix','Greta','Hugo','Ida','Jonas',
        'Karin','Lukas','Maria','Nils','Olga','Paul','Rosa','Simon','Tina','Viktor','Wanda','Yusuf','Zoe','Amir']),
     last_names(a) AS (SELECT ARRAY['Meyer','Schmidt','Novak','Rossi','Garcia','Jensen','Kowalski','Dubois',
        'Nielsen','Horvat','Silva','Berg','Laine','Popescu','Weber','Costa','Varga','Smith','Olsen','Keller']),
     domains(a) AS (SELECT ARRAY['example.org','mail.example','post.example','example.net']),
     patients AS (
        SELECT p, random() AS r1, random() AS r2, random() AS r3, random() AS r4, random() AS r5, random() AS r6
        FROM generate_series(1, 60000) AS p),
     patient_rows AS (
        SELECT p,
               'P' || lpad((floor(r1 * 1e6))::bigint::text, 6, '0') || lpad(p::text, 5, '0') AS patient_id,
               (SELECT a[1 + floor(r2 * array_length(a, 1))::int] FROM first_names) AS first_name,
               (SELECT a[1 + floor(r3 * array_length(a, 1))::int] FROM last_names) AS last_name,
               (SELECT a[1 + floor(r6 * array_length(a, 1))::int] FROM domains) AS domain,
               DATE '1930-01-01' + floor(power(r4, 0.8) * 30000)::int AS birth_date,
               lpad((10000 + floor(power(r5, 1.6) * 89999))::int::text, 5, '0') AS postal_code,
               CASE WHEN r6 < 0.51 THEN 'F' WHEN r6 < 0.995 THEN 'M' ELSE 'X' END AS sex
        FROM patients),
     visits AS (
        SELECT pr.*, v, random() AS s1, random() AS s2, random() AS s3, random() AS s4, random() AS s5
        FROM patient_rows pr, generate_series(1, 3) AS v
        WHERE v = 1 OR (v = 2 AND pr.p % 2 = 0) OR (v = 3 AND pr.p % 5 = 0))
INSERT INTO hospital.visits
SELECT row_number() OVER (ORDER BY p, v),
       patient_id,
       first_name || ' ' || last_name,
       lower(first_name) || '.' || lower(last_name) || p || '@' || domain,
       birth_date, postal_code, sex,
       DATE '2023-07-01' + floor(s1 * 900)::int,
       (ARRAY['internal-medicine','surgery','cardiology','orthopedics','maternity','oncology',
              'neurology','psychiatry','pediatrics','emergency'])[1 + floor(s2 * 10)::int],
       CASE WHEN s3 < 0.01 THEN NULL
            ELSE (ARRAY['I','II','IV','V','IX','X','XI','XIII','XIV','XV','XIX','XXI'])[1 + floor(power(s3, 1.2) * 12)::int] END,
       1 + floor(power(s4, 3) * 90)::int,
       round((200 + power(s5, 2.5) * 45000)::numeric, 2)
FROM visits;

ANALYZE hospital.visits;
