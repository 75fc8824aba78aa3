-- The resident groups each department works with (civil affairs: dibao, extreme-poverty...). A department's
-- keys read the residents in these groups and the memberships of these groups only, besides the residents
-- subscribed to the department's topics (docs/api.md, "Who reads residents").
CREATE TABLE department_groups (
    department  TEXT NOT NULL REFERENCES departments (code),
    group_id    BIGINT NOT NULL REFERENCES resident_groups (id),
    PRIMARY KEY (department, group_id)
);
