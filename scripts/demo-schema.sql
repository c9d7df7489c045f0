-- The demo's tables, created alike on the source and the target
-- (scripts/demo.sh; test/t/190_readme_tour.pl runs the README tour on them).
CREATE TABLE users (
    id          bigserial PRIMARY KEY,
    name        text NOT NULL,
    email       text NOT NULL UNIQUE,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE orders (
    id          bigserial PRIMARY KEY,
    user_id     bigint NOT NULL REFERENCES users (id),
    status      text NOT NULL DEFAULT 'new',
    total       numeric(12,2) NOT NULL DEFAULT 0,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE order_items (
    order_id    bigint NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    line_no     int NOT NULL,
    sku         text NOT NULL,
    qty         int NOT NULL,
    price       numeric(12,2) NOT NULL,
    PRIMARY KEY (order_id, line_no)
);
CREATE TABLE inventory (
    sku         text PRIMARY KEY,
    qty         int NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now()
);
