-- The demo's seed data, on the source only (scripts/demo.sh;
-- test/t/190_readme_tour.pl).
SELECT setseed(0.42) \gset
INSERT INTO inventory (sku, qty)
    SELECT 'SKU-' || lpad(g::text, 4, '0'), 100 + (random() * 900)::int
      FROM generate_series(1, 50) g;
INSERT INTO users (name, email, created_at, updated_at)
    SELECT 'User ' || g, 'user' || g || '@example.com',
           now() - make_interval(days => 200 - g), now() - make_interval(days => 200 - g)
      FROM generate_series(1, 200) g;
INSERT INTO orders (user_id, status, created_at)
    SELECT 1 + (random() * 149)::int,
           (ARRAY['new', 'paid', 'shipped', 'delivered'])[1 + (random() * 3)::int],
           now() - make_interval(hours => 300 - g)
      FROM generate_series(1, 300) g;
INSERT INTO order_items (order_id, line_no, sku, qty, price)
    SELECT o.id, l, 'SKU-' || lpad((1 + (random() * 49)::int)::text, 4, '0'),
           1 + (random() * 4)::int, round((2 + random() * 98)::numeric, 2)
      FROM orders o, generate_series(1, 1 + (o.id % 4)::int) l;
UPDATE orders o SET total = s.total
  FROM (SELECT order_id, sum(qty * price) AS total FROM order_items GROUP BY order_id) s
 WHERE s.order_id = o.id;
