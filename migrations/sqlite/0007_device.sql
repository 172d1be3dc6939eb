-- The device an attempt computed on: 'flex' (burn's CPU backend), 'tch-cpu' or 'cuda:N'
-- (LibTorch). NULL for attempts from before it was recorded, which all ran on flex.
ALTER TABLE attempts ADD COLUMN device TEXT;
