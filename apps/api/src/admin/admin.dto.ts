import { Type } from 'class-transformer';
import { IsIn, IsInt, IsOptional, IsString, Length, Max, MaxLength, Min } from 'class-validator';

/** GET /api/admin/orders (API.md §11). */
export class AdminOrdersQueryDto {
  @IsOptional() @IsIn(['wait', 'success', 'close', 'timeout', '']) status?: string;
  @IsOptional() @IsString() @MaxLength(64) channel?: string;
  @IsOptional() @IsString() @MaxLength(64) q?: string;
  @IsOptional() @IsString() @MaxLength(40) from?: string;
  @IsOptional() @IsString() @MaxLength(40) to?: string;
  @IsOptional() @IsString() @MaxLength(3) currency?: string;
  @IsOptional() @IsString() @MaxLength(20) minAmount?: string;
  @IsOptional() @IsString() @MaxLength(20) maxAmount?: string;
  @IsOptional() @Type(() => Number) @IsInt() @Min(1) @Max(200) limit?: number;
  @IsOptional() @IsString() @Length(1, 200) cursor?: string;
}

/** GET /api/admin/stats. */
export class AdminStatsQueryDto {
  @IsOptional() @IsString() @MaxLength(40) from?: string;
  @IsOptional() @IsString() @MaxLength(40) to?: string;
  @IsOptional() @IsIn(['day', 'hour']) bucket?: string;
  @IsOptional() @IsString() @MaxLength(64) tz?: string;
}

/** GET /api/admin/audit. */
export class AdminAuditQueryDto {
  @IsOptional() @IsString() @MaxLength(64) actor?: string;
  @IsOptional() @IsString() @MaxLength(32) orderId?: string;
  @IsOptional() @Type(() => Number) @IsInt() @Min(1) @Max(200) limit?: number;
  @IsOptional() @IsString() @Length(1, 40) cursor?: string;
}
